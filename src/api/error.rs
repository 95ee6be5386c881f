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
        ErrorCode::DuplicateVersion | ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
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
        (status_of(self.code), Json(json!({ "error": err }))).into_response()
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
