//! Bearer-key authentication as an extractor: a handler that takes [`Caller`] is
//! authenticated; one that doesn't is public.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::app::App;
use crate::auth::{AuthError, Principal};

pub struct Caller(pub Principal);

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(AuthError::MissingCredentials)?;
        let value = header.to_str().map_err(|_| AuthError::InvalidKey)?;
        let token = match value.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => return Err(AuthError::InvalidKey.into()),
        };
        Ok(Caller(app.accounts.authenticate(token)?))
    }
}
