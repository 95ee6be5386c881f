//! JSON bodies parsed here rather than by axum's `Json` extractor, because its rejections
//! quote serde's message (which can contain the offending string: a password, a secret
//! value) in the response and in a trace-level log line. Ours keep the position and the
//! field names, never content.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use super::error::{ApiError, from_bytes_rejection};
use crate::error::ErrorCode;

/// Parse a JSON body; `shape` is the hint shown when it does not fit.
pub fn parse_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    shape: &str,
) -> Result<T, ApiError> {
    let body = body.map_err(from_bytes_rejection)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with Content-Type: application/json",
        ));
    }
    serde_json::from_slice(&body).map_err(|e| {
        use serde_json::error::Category;
        let message = match e.classify() {
            Category::Syntax | Category::Eof => format!(
                "the body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
            // Only these name fields and nothing else; "invalid type/value" would quote data.
            Category::Data => {
                let m = e.to_string();
                if m.starts_with("missing field") || m.starts_with("duplicate field") {
                    m
                } else if m.starts_with("unknown field") {
                    // serde quotes the sent name, which could be pasted data: it is kept only
                    // when it looks like a field name (`nmae`), never like a value.
                    let sent = m.split('`').nth(1).unwrap_or("");
                    let name_like = (1..=40).contains(&sent.len())
                        && sent.starts_with(|c: char| c.is_ascii_lowercase())
                        && sent
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                    match (name_like, m.split_once(", expected")) {
                        (true, _) => m,
                        (false, Some((_, rest))) => {
                            format!("an unknown field was sent; expected{rest}")
                        }
                        (false, None) => "an unknown field was sent".into(),
                    }
                } else {
                    "a field has the wrong type or value".into()
                }
            }
            Category::Io => "could not read the body".into(),
        };
        ApiError::new(ErrorCode::InvalidRequest, message).with_hint(shape)
    })
}
