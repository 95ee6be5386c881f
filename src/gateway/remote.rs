//! Streamable HTTP upstreams (remote servers, and local servers listening on a port):
//! each downstream session gets its own upstream session, and bodies stream through
//! unchanged. The caller's API key is never forwarded; the upstream gets the headers the
//! manifest declares, filled from the caller's secrets.

use std::time::Instant;

use std::pin::Pin;

use futures_util::Stream;
use serde_json::Value;

use super::session::{Link, Session};
use super::{Gateway, GatewayError, PostMeta, meter};

/// A proxied body, chunk by chunk as the upstream sends it.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, String>> + Send>>;

/// A proxied answer: status, content type, and the body as it arrives.
pub struct HttpReply {
    pub status: u16,
    pub content_type: Option<String>,
    /// The gateway's session id to return (set on initialize).
    pub session: Option<String>,
    pub body: BodyStream,
}

/// A Streamable HTTP link's URL, headers, upstream session slot and local instance.
type HttpParts<'a> = (
    &'a str,
    &'a [(String, crate::vault::SecretValue)],
    &'a std::sync::Mutex<Option<String>>,
    Option<&'a std::sync::Arc<crate::runtime::Instance>>,
);

fn parts(link: &Link) -> Result<HttpParts<'_>, GatewayError> {
    match link {
        Link::Http {
            url,
            headers,
            upstream_session,
            instance,
        } => Ok((url, headers, upstream_session, instance.as_ref())),
        Link::Stdio(_) => Err(GatewayError::Upstream("not an HTTP upstream".into())),
    }
}

fn with_common(
    mut req: reqwest::RequestBuilder,
    headers: &[(String, crate::vault::SecretValue)],
    upstream_session: &std::sync::Mutex<Option<String>>,
    protocol: Option<&str>,
) -> reqwest::RequestBuilder {
    if let Some(p) = protocol {
        req = req.header("mcp-protocol-version", p);
    }
    if let Some(s) = upstream_session
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
    {
        req = req.header("mcp-session-id", s);
    }
    for (k, v) in headers {
        req = req.header(k.as_str(), v.expose());
    }
    req
}

async fn relay(
    resp: reqwest::Response,
    upstream_session: &std::sync::Mutex<Option<String>>,
) -> HttpReply {
    if let Some(sid) = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
    {
        *upstream_session.lock().unwrap_or_else(|p| p.into_inner()) = Some(sid.to_string());
    }
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Pulled by the downstream response itself: no task or channel per request, and a
    // client that goes away stops the upstream read.
    let body = futures_util::stream::unfold(Some(resp), |resp| async move {
        let mut resp = resp?;
        match resp.chunk().await {
            Ok(Some(c)) => Some((Ok(c.to_vec()), Some(resp))),
            Ok(None) => None,
            Err(e) => Some((Err(e.without_url().to_string()), None)),
        }
    });
    HttpReply {
        status,
        content_type,
        session: None,
        body: Box::pin(body),
    }
}

fn upstream_error(e: reqwest::Error) -> GatewayError {
    GatewayError::Upstream(e.without_url().to_string())
}

pub(super) async fn forward_post(
    gw: &Gateway,
    session: &Session,
    link: &Link,
    meta: &PostMeta<'_>,
    body: &[u8],
) -> Result<HttpReply, GatewayError> {
    let (url, headers, upstream_session, instance) = parts(link)?;
    let _busy = match instance {
        Some(i) => {
            i.ready().await?;
            Some(i.busy())
        }
        None => None,
    };
    let started = Instant::now();
    let req = gw
        .http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            reqwest::header::ACCEPT,
            meta.accept.unwrap_or("application/json, text/event-stream"),
        )
        .body(body.to_vec());
    let protocol = meta.protocol.or(Some(session.protocol.as_str()));
    let resp = with_common(req, headers, upstream_session, protocol)
        .send()
        .await
        .map_err(upstream_error)?;
    let reply = relay(resp, upstream_session).await;
    let msg: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let method = msg
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("response");
    let tool = (method == "tools/call")
        .then(|| msg.pointer("/params/name").and_then(Value::as_str))
        .flatten();
    gw.meter.record(meter::Sample {
        user: &session.user,
        deployment: &session.deployment,
        method,
        tool,
        ok: (200..300).contains(&reply.status),
        latency_ms: started.elapsed().as_millis() as u64,
        bytes_in: body.len() as u64,
        bytes_out: 0,
        at_ms: gw.ambient.now_ms(),
    });
    Ok(reply)
}

pub(super) async fn forward_get(
    gw: &Gateway,
    session: &Session,
    link: &Link,
    last_event_id: Option<&str>,
) -> Result<HttpReply, GatewayError> {
    let (url, headers, upstream_session, instance) = parts(link)?;
    if let Some(i) = instance {
        i.ready().await?;
    }
    let mut req = gw
        .http
        .get(url)
        .header(reqwest::header::ACCEPT, "text/event-stream");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let resp = with_common(req, headers, upstream_session, Some(&session.protocol))
        .send()
        .await
        .map_err(upstream_error)?;
    Ok(relay(resp, upstream_session).await)
}

pub(super) async fn forward_delete(gw: &Gateway, session: &Session, link: &Link) {
    let Ok((url, headers, upstream_session, _)) = parts(link) else {
        return;
    };
    let req = with_common(
        gw.http.delete(url),
        headers,
        upstream_session,
        Some(&session.protocol),
    );
    let _ = req.send().await;
}
