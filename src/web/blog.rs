//! The blog: Markdown posts with YAML front matter embedded from `assets/blog/`, rendered
//! once at first use (code blocks highlighted server-side), listed with filters, and an
//! Atom feed.

use std::sync::OnceLock;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::assets;
use super::highlight::highlight;
use super::render::{HtmlError, html, render_str};
use crate::error::ErrorCode;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    title: String,
    /// YYYY-MM-DD
    date: String,
    summary: String,
    category: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    featured: bool,
    #[serde(default)]
    author: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Post {
    pub slug: String,
    pub title: String,
    pub date: String,
    pub summary: String,
    pub category: String,
    pub tags: Vec<String>,
    pub featured: bool,
    pub author: String,
    pub minutes: usize,
    pub html: String,
    /// Lower-cased title, summary and text, for the list's search box.
    #[serde(skip)]
    haystack: String,
}

#[derive(Debug, thiserror::Error)]
#[error("blog post {file}: {reason}")]
pub struct PostError {
    file: String,
    reason: String,
}

/// Parse one post file: `---\n<yaml>\n---\n<markdown>`.
pub fn parse_post(file: &str, text: &str) -> Result<Post, PostError> {
    let err = |reason: String| PostError {
        file: file.to_string(),
        reason,
    };
    let rest = text
        .strip_prefix("---\n")
        .ok_or_else(|| err("must start with a --- front matter block".into()))?;
    let (yaml, body) = rest
        .split_once("\n---\n")
        .ok_or_else(|| err("front matter is not closed by ---".into()))?;
    let fm: FrontMatter = serde_yaml_ng::from_str(yaml).map_err(|e| err(e.to_string()))?;
    let slug = file
        .rsplit('/')
        .next()
        .unwrap_or(file)
        .trim_end_matches(".md")
        .to_string();
    let words = body.split_whitespace().count();
    Ok(Post {
        haystack: format!("{} {} {}", fm.title, fm.summary, body).to_lowercase(),
        slug,
        title: fm.title,
        date: fm.date,
        summary: fm.summary,
        category: fm.category,
        tags: fm.tags,
        featured: fm.featured,
        author: fm.author.unwrap_or_else(|| "The Sigil team".into()),
        minutes: words.div_ceil(200).max(1),
        html: markdown(body),
    })
}

/// CommonMark to HTML with highlighted fenced code. Raw HTML in posts is escaped: posts are
/// ours, but the page's CSP and the habit both say "no inline markup surprises".
pub fn markdown(text: &str) -> String {
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    let mut events = Vec::new();
    let mut code: Option<(String, String)> = None;
    for ev in Parser::new_ext(text, opts) {
        match ev {
            Event::Start(Tag::CodeBlock(kind)) => {
                let lang = match kind {
                    CodeBlockKind::Fenced(l) => l.to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                code = Some((lang, String::new()));
            }
            Event::Text(t) if code.is_some() => {
                if let Some((_, buf)) = code.as_mut() {
                    buf.push_str(&t);
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some((lang, buf)) = code.take() {
                    let body = highlight(&lang, buf.trim_end_matches('\n'));
                    let label = if lang.is_empty() { "text".into() } else { lang };
                    events.push(Event::Html(
                        format!(
                            "<pre class=\"code\" data-lang=\"{}\"><code>{body}</code></pre>\n",
                            label.replace(|c: char| !c.is_ascii_alphanumeric(), "")
                        )
                        .into(),
                    ));
                }
            }
            Event::Html(h) | Event::InlineHtml(h) => events.push(Event::Text(h)),
            other => events.push(other),
        }
    }
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events.into_iter());
    out
}

/// Every post, newest first. A post that does not parse is logged and left out.
pub fn posts() -> &'static [Post] {
    static POSTS: OnceLock<Vec<Post>> = OnceLock::new();
    POSTS.get_or_init(|| {
        let mut v: Vec<Post> = assets::list("blog/")
            .into_iter()
            .filter(|p| p.ends_with(".md"))
            .filter_map(|p| {
                let text = assets::text(&p)?;
                parse_post(&p, &text)
                    .map_err(|e| tracing::error!(error = %e, "skipping blog post"))
                    .ok()
            })
            .collect();
        v.sort_by(|a, b| b.date.cmp(&a.date).then(a.slug.cmp(&b.slug)));
        v
    })
}

#[derive(Deserialize, Default)]
pub struct BlogParams {
    q: Option<String>,
    category: Option<String>,
    tag: Option<String>,
}

pub async fn index(q: Result<Query<BlogParams>, QueryRejection>) -> Result<Response, HtmlError> {
    let Query(p) = q.map_err(|e| HtmlError::new(ErrorCode::InvalidRequest, e.body_text()))?;
    let needle = p.q.as_deref().unwrap_or("").trim().to_lowercase();
    let category = p.category.filter(|c| !c.is_empty());
    let tag = p.tag.filter(|t| !t.is_empty());
    let all = posts();
    let filtering = !needle.is_empty() || category.is_some() || tag.is_some();
    let featured = (!filtering)
        .then(|| all.iter().find(|p| p.featured))
        .flatten();
    let list: Vec<&Post> = all
        .iter()
        .filter(|p| needle.is_empty() || p.haystack.contains(&needle))
        .filter(|p| category.as_ref().is_none_or(|c| &p.category == c))
        .filter(|p| tag.as_ref().is_none_or(|t| p.tags.contains(t)))
        .filter(|p| featured.is_none_or(|f| f.slug != p.slug))
        .collect();
    let mut categories: Vec<&str> = all.iter().map(|p| p.category.as_str()).collect();
    categories.sort();
    categories.dedup();
    let mut tags: Vec<&str> = all
        .iter()
        .flat_map(|p| p.tags.iter().map(String::as_str))
        .collect();
    tags.sort();
    tags.dedup();
    Ok(html(
        "blog.html",
        &json!({
            "section": "blog",
            "q": p.q,
            "category": category,
            "tag": tag,
            "featured": featured,
            "posts": list,
            "categories": categories,
            "tags": tags,
        }),
    ))
}

pub async fn post(Path(slug): Path<String>, headers: HeaderMap) -> Result<Response, HtmlError> {
    let Some(p) = posts().iter().find(|p| p.slug == slug) else {
        return Err(
            HtmlError::new(ErrorCode::NotFound, "no blog post by that name")
                .with_hint("see the list at /blog"),
        );
    };
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost:8080");
    Ok(html(
        "post.html",
        &json!({
            "section": "blog",
            "post": p,
            "share_url": format!("http://{host}/blog/{}", p.slug),
        }),
    ))
}

pub async fn feed(headers: HeaderMap) -> Response {
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost:8080");
    let ctx = json!({
        "base": format!("http://{host}"),
        "posts": posts(),
        "updated": posts().first().map(|p| p.date.clone()).unwrap_or_else(|| "1970-01-01".into()),
    });
    match render_str("feed.xml.html", &ctx) {
        Ok(body) => (
            [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_and_reading_time() {
        let p = parse_post(
            "blog/hello.md",
            "---\ntitle: Hi\ndate: 2026-01-02\nsummary: S\ncategory: Guides\ntags: [a]\n---\n# T\n\n```toml\nport = 1\n```\n<script>x</script>\n",
        )
        .unwrap();
        assert_eq!(p.slug, "hello");
        assert_eq!(p.minutes, 1);
        assert!(p.html.contains("data-lang=\"toml\""), "{}", p.html);
        assert!(p.html.contains("&lt;script&gt;"), "{}", p.html);
        assert!(parse_post("x.md", "no front matter").is_err());
        assert!(parse_post("x.md", "---\ntitle: T\nbogus: 1\n---\n").is_err());
    }

    #[test]
    fn embedded_posts_all_parse() {
        let files = assets::list("blog/");
        assert!(files.len() >= 3, "{files:?}");
        for f in files {
            parse_post(&f, &assets::text(&f).unwrap()).unwrap();
        }
    }
}
