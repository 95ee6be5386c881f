//! The one place an [`ErrorCode`] becomes an HTTP status and a JSON body.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{Coded, ErrorCode};

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<serde_json::Value>,
    pub hint: Option<String>,
}

pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
        ErrorCode::InvalidManifest => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::DuplicateVersion | ErrorCode::Conflict | ErrorCode::ReadOnlyMirror => {
            StatusCode::CONFLICT
        }
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::MissingSecrets | ErrorCode::InvalidSecrets | ErrorCode::UnsupportedRuntime => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ErrorCode::McpNotFound | ErrorCode::SessionExpired => StatusCode::NOT_FOUND,
        ErrorCode::ConnectionFailed => StatusCode::BAD_GATEWAY,
        ErrorCode::InvalidApiKey => StatusCode::UNAUTHORIZED,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::ScanBlocked => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::InvalidCredentials | ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::AccountDisabled | ErrorCode::CsrfFailed | ErrorCode::InsufficientScope => {
            StatusCode::FORBIDDEN
        }
    }
}

/// The official registry API (`/v0`, `/v0.1`) answers a few codes differently: like the
/// official server, every business failure of a publish or status change is a 400.
pub fn official_status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::DuplicateVersion | ErrorCode::Conflict | ErrorCode::ReadOnlyMirror => {
            StatusCode::BAD_REQUEST
        }
        other => status_of(other),
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: None,
            hint: None,
        }
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Any domain error renders through its code; internal ones are logged, not shown.
impl<E: Coded> From<E> for ApiError {
    fn from(e: E) -> Self {
        let code = e.code();
        if code == ErrorCode::Internal {
            tracing::error!(error = %e, "internal error");
            return ApiError::new(code, "internal error; the server log has details");
        }
        ApiError {
            code,
            message: e.to_string(),
            details: e.details(),
            hint: e.hint(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut err = json!({ "code": self.code, "message": self.message });
        if let Some(d) = self.details {
            err["details"] = d;
        }
        if let Some(h) = self.hint {
            err["hint"] = h.into();
        }
        // A rate-limit refusal carries its wait in details; clients also get it as a header.
        let retry_after = (self.code == ErrorCode::RateLimited)
            .then(|| err["details"]["retry_after_secs"].as_u64())
            .flatten();
        let mut resp = (status_of(self.code), Json(json!({ "error": err }))).into_response();
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        resp
    }
}

pub fn from_bytes_rejection(r: BytesRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            "request body is larger than the configured limit",
        )
        .with_hint("raise max_body_bytes in sigil.toml if this manifest is legitimate")
    } else {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("could not read the request body: {}", r.body_text()),
        )
    }
}

pub fn from_json_rejection(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::BytesRejection(b) => from_bytes_rejection(b),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with Content-Type: application/json",
        ),
        other => ApiError::new(ErrorCode::InvalidRequest, other.body_text()),
    }
}

pub fn from_query_rejection(r: QueryRejection) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, r.body_text())
}

pub fn from_path_rejection(r: PathRejection) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, r.body_text())
}

/// RFC 9457 problem details: the error shape of the official registry API (`/v0`,
/// `/v0.1`), served as `application/problem+json`:
/// `{title, status, detail, errors:[{message, location?, value?}], error}`. `error`
/// repeats `detail` for clients written against the generic OpenAPI spec, which documents
/// `{"error": "…"}`.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub detail: String,
    pub errors: Vec<serde_json::Value>,
    pub hint: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Problem {
            status,
            detail: detail.into(),
            errors: Vec::new(),
            hint: None,
        }
    }

    /// A parameter or body field outside its declared schema: 422 "validation failed",
    /// as the official server (huma) answers it. `location` is like `query.limit`.
    pub fn validation(
        location: &str,
        value: impl Into<serde_json::Value>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: "validation failed".into(),
            errors: vec![json!({
                "message": message.into(),
                "location": location,
                "value": value.into(),
            })],
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Replace the headline; the previous one becomes the first entry of `errors` when
    /// there are none, so nothing specific is lost.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        if self.errors.is_empty() {
            self.errors.push(json!({ "message": self.detail }));
        }
        self.detail = detail.into();
        self
    }
}

impl From<ApiError> for Problem {
    fn from(e: ApiError) -> Self {
        // Manifest issues become one entry each, located like huma locates body fields.
        let errors = e
            .details
            .as_ref()
            .and_then(|d| d.get("issues"))
            .and_then(serde_json::Value::as_array)
            .map(|issues| {
                issues
                    .iter()
                    .map(|i| {
                        let path = i["path"].as_str().unwrap_or_default();
                        let location = if path.is_empty() {
                            "body".to_string()
                        } else {
                            format!("body.{path}")
                        };
                        json!({ "message": i["message"], "location": location })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Problem {
            status: official_status_of(e.code),
            detail: e.message,
            errors,
            hint: e.hint,
        }
    }
}

/// Any domain error renders through its code, like [`ApiError`].
impl<E: Coded> From<E> for Problem {
    fn from(e: E) -> Self {
        Problem::from(ApiError::from(e))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "errors": self.errors,
            "error": self.detail,
        });
        if let Some(h) = self.hint {
            body["hint"] = h.into();
        }
        (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response()
    }
}
