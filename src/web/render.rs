//! Templates and HTML responses, including errors rendered from the same [`ErrorCode`]
//! (and HTTP status) the JSON API uses.

use std::sync::OnceLock;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::Environment;
use serde_json::{Value, json};

use super::assets;
use crate::error::{Coded, ErrorCode};

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Autoescape every template: they all end in .html, but say it rather than rely on it.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        for path in assets::list("templates/") {
            let name = path.trim_start_matches("templates/").to_string();
            let Some(text) = assets::text(&path) else {
                continue;
            };
            if let Err(e) = env.add_template_owned(name.clone(), text) {
                tracing::error!(template = %name, error = %e, "template does not parse");
            }
        }
        // Our own URLs, marked safe so they are not entity-escaped (`/` → `&#x2f;`).
        let asset: std::collections::BTreeMap<&str, minijinja::Value> = [
            ("css", "app.css"),
            ("js", "app.js"),
            ("htmx", "htmx.js"),
            ("icon", "favicon.svg"),
        ]
        .into_iter()
        .map(|(k, f)| (k, minijinja::Value::from_safe_string(assets::url(f))))
        .collect();
        env.add_global("asset", minijinja::Value::from_object(asset));
        env.add_global("version", env!("CARGO_PKG_VERSION"));
        env.add_filter("pretty", |v: minijinja::Value| -> String {
            serde_json::to_string_pretty(&v).unwrap_or_default()
        });
        env
    })
}

/// Render a template to a string (used by fragments and the feed too).
pub fn render_str(template: &str, ctx: &Value) -> Result<String, HtmlError> {
    let t = env().get_template(template).map_err(|e| {
        tracing::error!(template, error = %e, "template missing");
        HtmlError::new(
            ErrorCode::Internal,
            "internal error; the server log has details",
        )
    })?;
    t.render(minijinja::Value::from_serialize(ctx))
        .map_err(|e| {
            tracing::error!(template, error = %e, "template failed to render");
            HtmlError::new(
                ErrorCode::Internal,
                "internal error; the server log has details",
            )
        })
}

/// A full HTML page or fragment.
pub fn html(template: &str, ctx: &Value) -> Response {
    html_status(StatusCode::OK, template, ctx)
}

pub fn html_status(status: StatusCode, template: &str, ctx: &Value) -> Response {
    match render_str(template, ctx) {
        Ok(body) => (
            status,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// An error page: the API's code, message and hint, as HTML, with the API's status.
#[derive(Debug)]
pub struct HtmlError {
    pub code: ErrorCode,
    pub message: String,
    pub hint: Option<String>,
}

impl HtmlError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        HtmlError {
            code,
            message: message.into(),
            hint: None,
        }
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl<E: Coded> From<E> for HtmlError {
    fn from(e: E) -> Self {
        if e.code() == ErrorCode::Internal {
            tracing::error!(error = %e, "internal error");
            return HtmlError::new(
                ErrorCode::Internal,
                "internal error; the server log has details",
            );
        }
        HtmlError {
            code: e.code(),
            message: e.to_string(),
            hint: e.hint(),
        }
    }
}

impl IntoResponse for HtmlError {
    fn into_response(self) -> Response {
        let status = crate::api::error::status_of(self.code);
        let ctx = json!({
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "code": self.code.as_str(),
            "message": self.message,
            "hint": self.hint,
        });
        match env()
            .get_template("error.html")
            .and_then(|t| t.render(minijinja::Value::from_serialize(&ctx)))
        {
            Ok(body) => (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                body,
            )
                .into_response(),
            // The error page itself failed: plain text, still the right status and code.
            Err(_) => (status, format!("{}: {}", self.code.as_str(), self.message)).into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every template parses; a parse error would otherwise only show as a 500 at runtime.
    #[test]
    fn every_template_parses_and_the_blog_list_renders() {
        let names = assets::list("templates/");
        assert!(names.len() > 10, "{names:?}");
        for path in names {
            let name = path.trim_start_matches("templates/");
            env()
                .get_template(name)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
        let ctx = json!({"section": "blog", "q": null, "category": null, "tag": null,
            "featured": null, "posts": [{"slug": "a", "title": "T", "date": "2026-01-01",
            "summary": "S", "category": "Guides", "tags": ["x y"], "minutes": 1}], "categories": ["Guides"], "tags": ["a"]});
        env()
            .get_template("blog.html")
            .unwrap()
            .render(minijinja::Value::from_serialize(&ctx))
            .unwrap_or_else(|e| panic!("{e:#}"));
    }
}
