//! The route table: every route is registered through [`Routes::add`] with the access it
//! needs, so the router and the table the authorization tests walk are one list. The
//! access travels with the request (an extension) and [`super::auth::Caller`] enforces it.

use std::sync::Arc;

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodFilter, on};

use crate::app::App;
use crate::auth::Scope;

/// What a route needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, no credential (public reads, login).
    Public,
    /// A Bearer key or browser session holding this scope. Role and ownership checks
    /// happen in the domain on top of it.
    Scope(Scope),
}

/// One row of the table: `GET /api/v1/keys` needs `read`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: &'static str,
    pub path: String,
    pub access: Access,
}

pub struct Routes {
    prefix: &'static str,
    router: Router<Arc<App>>,
    table: Vec<RouteSpec>,
}

impl Routes {
    /// `prefix` is where the router will be nested (only recorded in the table).
    pub fn new(prefix: &'static str) -> Self {
        Routes {
            prefix,
            router: Router::new(),
            table: Vec::new(),
        }
    }

    pub fn add<H, T>(mut self, method: &'static str, path: &str, access: Access, handler: H) -> Self
    where
        H: Handler<T, Arc<App>>,
        T: 'static,
    {
        let filter = match method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "PATCH" => MethodFilter::PATCH,
            "DELETE" => MethodFilter::DELETE,
            other => panic!("route table: unsupported method {other}"),
        };
        self.router = self
            .router
            .route(path, on(filter, handler).layer(axum::Extension(access)));
        self.table.push(RouteSpec {
            method,
            path: format!("{}{path}", self.prefix),
            access,
        });
        self
    }

    pub fn into_parts(self) -> (Router<Arc<App>>, Vec<RouteSpec>) {
        (self.router, self.table)
    }
}
