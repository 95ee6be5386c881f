//! The closed set of error codes every API speaks.
//!
//! Domain errors (`thiserror` per module) each name one of these codes; the API layer maps
//! a code to an HTTP status in exactly one place (`api::error`). Codes are part of the
//! public contract: add new ones, never rename.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed request: bad query parameter, bad JSON, wrong content type.
    InvalidRequest,
    /// A manifest failed validation; details list every issue with its path.
    InvalidManifest,
    DuplicateVersion,
    NotFound,
    Unauthorized,
    Forbidden,
    Conflict,
    /// A write to a mirrored server: upstream owns it until an admin takes it over.
    ReadOnlyMirror,
    PayloadTooLarge,
    UnsupportedMediaType,
    MethodNotAllowed,
    /// Not ready yet (index rebuilding, shutting down).
    Unavailable,
    /// The caller lacks secrets the server requires; details list them.
    MissingSecrets,
    /// A secret the server needs has the wrong form (e.g. not a number).
    InvalidSecrets,
    /// The package kind cannot run on this runtime (e.g. `oci` locally).
    UnsupportedRuntime,
    /// No such MCP server or deployment behind a gateway URL.
    McpNotFound,
    /// The MCP server could not be started or reached.
    ConnectionFailed,
    /// The MCP session ended or never existed; initialize a new one.
    SessionExpired,
    /// The API key presented to the gateway is missing, unknown or revoked.
    InvalidApiKey,
    Internal,
    /// The deploy-time scan found findings at or above the policy's threshold; details
    /// list them. Deploy again with an explicit accept-risk to go ahead.
    ScanBlocked,
    /// Login with a wrong username or password (which of the two is not said).
    InvalidCredentials,
    /// Too many attempts; `Retry-After` says when to try again.
    RateLimited,
    /// The account exists but an admin disabled it.
    AccountDisabled,
    /// A cookie-authenticated state change without the session's `X-CSRF-Token`.
    CsrfFailed,
    /// The credential lacks the scope the endpoint needs; details name it.
    InsufficientScope,
    /// No valid browser session (`GET /auth/session`).
    Unauthenticated,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidManifest => "invalid_manifest",
            ErrorCode::DuplicateVersion => "duplicate_version",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Conflict => "conflict",
            ErrorCode::ReadOnlyMirror => "read_only_mirror",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::MissingSecrets => "missing_secrets",
            ErrorCode::InvalidSecrets => "invalid_secrets",
            ErrorCode::UnsupportedRuntime => "unsupported_runtime",
            ErrorCode::McpNotFound => "mcp_not_found",
            ErrorCode::ConnectionFailed => "connection_failed",
            ErrorCode::SessionExpired => "session_expired",
            ErrorCode::InvalidApiKey => "invalid_api_key",
            ErrorCode::Internal => "internal",
            ErrorCode::ScanBlocked => "scan_blocked",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::AccountDisabled => "account_disabled",
            ErrorCode::CsrfFailed => "csrf_failed",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::Unauthenticated => "unauthenticated",
        }
    }
}

/// Implemented by every domain error so the API can render it without knowing the module.
pub trait Coded: std::error::Error {
    fn code(&self) -> ErrorCode;
    /// Structured detail safe to show the caller (never secrets, never internals).
    fn details(&self) -> Option<serde_json::Value> {
        None
    }
    /// What the caller can do about it.
    fn hint(&self) -> Option<String> {
        None
    }
}
