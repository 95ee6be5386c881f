//! Streamable HTTP upstreams (remote servers, and local servers listening on a port):
//! each downstream session gets its own upstream session, and bodies stream through
//! unchanged. The caller's API key is never forwarded; the upstream gets the headers the
//! manifest declares, filled from the caller's secrets.

use std::time::Instant;

use std::pin::Pin;

use futures_util::Stream;

use super::session::{Link, Session};
use super::{Gateway, GatewayError, PostMeta, meter};

/// A proxied body, chunk by chunk as the upstream sends it.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, String>> + Send>>;

/// A proxied answer: status, content type, and the body.
pub struct HttpReply {
    pub status: u16,
    pub content_type: Option<String>,
    /// The gateway's session id to return (set on initialize).
    pub session: Option<String>,
    pub body: ProxiedBody,
}

pub enum ProxiedBody {
    /// The whole body, known before the reply starts (sent with a Content-Length).
    Full(Vec<u8>),
    /// Chunk by chunk as the upstream sends it.
    Stream(BodyStream),
}

/// What the gateway knows of a forwarded POST, for metering and framing.
pub(super) struct Rpc<'a> {
    pub method: &'a str,
    pub tool: Option<&'a str>,
    /// A request (method and id): its response is what ends the upstream's SSE stream.
    pub is_request: bool,
    /// Count it in the meter (initialize is counted by the caller).
    pub meter: bool,
}

/// A Streamable HTTP link's URL, headers, upstream session slot and local instance.
type HttpParts<'a> = (
    &'a reqwest::Url,
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

/// A request to an upstream, with the headers every forwarded request carries: the
/// protocol version, the upstream's own session id, and the manifest's headers.
fn upstream_request(
    method: http::Method,
    url: &reqwest::Url,
    headers: &[(String, crate::vault::SecretValue)],
    upstream_session: &std::sync::Mutex<Option<String>>,
    protocol: Option<&str>,
    extra: &[(http::HeaderName, &str)],
    body: bytes::Bytes,
) -> Result<http::Request<bytes::Bytes>, GatewayError> {
    let mut req = http::Request::builder().method(method).uri(url.as_str());
    for (k, v) in extra {
        req = req.header(k, *v);
    }
    if let Some(p) = protocol {
        req = req.header("mcp-protocol-version", p);
    }
    if let Some(s) = upstream_session
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_deref()
    {
        req = req.header("mcp-session-id", s);
    }
    for (k, v) in headers {
        req = req.header(k.as_str(), v.expose());
    }
    // Header values come from manifests, secrets and the client: one that is not a legal
    // header is the caller's to fix, and is not echoed (it may be a secret).
    req.body(body).map_err(|_| {
        GatewayError::Upstream("a header for the upstream is not valid in HTTP".into())
    })
}

/// An upstream's answer: from the loopback pool (local instances) or reqwest (remotes).
enum UpResponse {
    Remote(reqwest::Response),
    Local(super::local_http::Response, std::time::Duration),
}

impl UpResponse {
    fn status(&self) -> u16 {
        match self {
            UpResponse::Remote(r) => r.status().as_u16(),
            UpResponse::Local(r, _) => r.head.status.as_u16(),
        }
    }

    fn header(&self, name: http::HeaderName) -> Option<&str> {
        let headers = match self {
            UpResponse::Remote(r) => r.headers(),
            UpResponse::Local(r, _) => &r.head.headers,
        };
        headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The next piece of the body; a read that waits longer than the request timeout fails,
    /// like reqwest's read timeout for remotes.
    async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, String> {
        match self {
            UpResponse::Remote(r) => r.chunk().await.map_err(|e| e.without_url().to_string()),
            UpResponse::Local(r, timeout) => tokio::time::timeout(*timeout, r.chunk())
                .await
                .unwrap_or_else(|_| Err("the upstream stopped sending".into())),
        }
    }
}

/// Send a request upstream: to a local instance through the gateway's loopback pool, to
/// a remote through reqwest.
async fn send(
    gw: &Gateway,
    local: bool,
    url: &reqwest::Url,
    req: http::Request<bytes::Bytes>,
) -> Result<UpResponse, GatewayError> {
    let timeout = std::time::Duration::from_secs(gw.cfg.request_timeout_secs.max(1));
    // Local instances listen on a loopback IP literal (runtime::local); anything else
    // goes through reqwest.
    let addr = match (local, url.host_str(), url.port()) {
        (true, Some(host), Some(port)) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| (ip, port)),
        _ => None,
    };
    let Some((ip, port)) = addr else {
        let req = reqwest::Request::try_from(req).map_err(upstream_error)?;
        return gw
            .http
            .execute(req)
            .await
            .map(UpResponse::Remote)
            .map_err(upstream_error);
    };
    // Origin-form target and a Host header, as HTTP/1.1 servers expect from a client.
    let (mut head, body) = req.into_parts();
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    head.uri = target
        .parse()
        .map_err(|_| GatewayError::Upstream("bad upstream URL".into()))?;
    let addr = std::net::SocketAddr::new(ip, port);
    // SocketAddr's form brackets an IPv6 address, as a Host header needs.
    if let Ok(host) = http::HeaderValue::from_str(&addr.to_string()) {
        head.headers.insert(http::header::HOST, host);
    }
    let req = http::Request::from_parts(head, http_body_util::Full::new(body));
    let sent = gw.local_http.send(addr, req);
    match tokio::time::timeout(timeout, sent).await {
        Ok(Ok(r)) => Ok(UpResponse::Local(r, timeout)),
        Ok(Err(e)) => Err(GatewayError::Upstream(e)),
        Err(_) => Err(GatewayError::Upstream(
            "the upstream did not answer in time".into(),
        )),
    }
}

/// Status and content type of an upstream answer; remembers the upstream's session id.
fn head_of(
    resp: &UpResponse,
    upstream_session: &std::sync::Mutex<Option<String>>,
) -> (u16, Option<String>) {
    if let Some(sid) = resp.header(http::HeaderName::from_static("mcp-session-id")) {
        let mut slot = upstream_session.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_deref() != Some(sid) {
            *slot = Some(sid.to_string());
        }
    }
    let content_type = resp.header(http::header::CONTENT_TYPE).map(str::to_owned);
    (resp.status(), content_type)
}

/// The rest of an upstream body as a stream, after `first` (bytes already read).
/// Pulled by the downstream response itself: no task or channel per request, and a client
/// that goes away stops the upstream read.
fn stream_rest(first: Vec<u8>, resp: UpResponse) -> BodyStream {
    let first = (!first.is_empty()).then_some(first);
    let body = futures_util::stream::unfold((first, Some(resp)), |(first, resp)| async move {
        if let Some(f) = first {
            return Some((Ok(f), (None, resp)));
        }
        let mut resp = resp?;
        match resp.chunk().await {
            Ok(Some(c)) => Some((Ok(c.to_vec()), (None, Some(resp)))),
            Ok(None) => None,
            Err(e) => Some((Err(e), (None, None))),
        }
    });
    Box::pin(body)
}

fn relay(resp: UpResponse, upstream_session: &std::sync::Mutex<Option<String>>) -> HttpReply {
    let (status, content_type) = head_of(&resp, upstream_session);
    HttpReply {
        status,
        content_type,
        session: None,
        body: ProxiedBody::Stream(stream_rest(Vec::new(), resp)),
    }
}

/// More than this without a complete first event: stop looking and stream.
const FIRST_EVENT_MAX: usize = 4 * 1024 * 1024;

/// The answer to a request, reframed when it can be: an upstream that answers with an SSE
/// stream whose first message is the response itself (the common case: no progress, logs
/// or server requests before it) is answered as plain `application/json`, which the
/// client accepts (the gateway requires it in `Accept`). That is one write of a sized body
/// instead of a chunked stream, and no SSE parsing in the client; anything else before the
/// response, or an upstream that answers JSON, streams through unchanged.
async fn relay_request(
    mut resp: UpResponse,
    upstream_session: &std::sync::Mutex<Option<String>>,
) -> (HttpReply, Option<Vec<u8>>) {
    let (status, content_type) = head_of(&resp, upstream_session);
    let is_sse = content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/event-stream"));
    if !(200..300).contains(&status) || !is_sse {
        return (
            HttpReply {
                status,
                content_type,
                session: None,
                body: ProxiedBody::Stream(stream_rest(Vec::new(), resp)),
            },
            None,
        );
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut scanned = 0;
    let outcome = loop {
        match sse::first_message(&buf, &mut scanned) {
            sse::First::Response(data) => break Some(data),
            sse::First::Other => break None,
            sse::First::Incomplete if buf.len() > FIRST_EVENT_MAX => break None,
            sse::First::Incomplete => {}
        }
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            // Ended or failed before a response: pass on what came.
            Ok(None) | Err(_) => break None,
        }
    };
    let Some(data) = outcome else {
        return (
            HttpReply {
                status,
                content_type,
                session: None,
                body: ProxiedBody::Stream(stream_rest(buf, resp)),
            },
            None,
        );
    };
    finish_body(resp);
    (
        HttpReply {
            status,
            content_type: Some("application/json".into()),
            session: None,
            body: ProxiedBody::Full(data.clone()),
        },
        Some(data),
    )
}

/// Read an upstream body to its end so its connection goes back to the pool: inline when
/// the end is already there (it usually arrives with the response), else in a task.
fn finish_body(mut resp: UpResponse) {
    use futures_util::FutureExt as _;
    loop {
        match resp.chunk().now_or_never() {
            Some(Ok(Some(_))) => {}
            Some(Ok(None) | Err(_)) => return,
            None => break,
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = resp.chunk().await {} });
}

/// Just enough Server-Sent Events parsing to find a stream's first message.
mod sse {
    use super::super::jsonrpc;

    pub enum First {
        /// The first message is a JSON-RPC response (its data).
        Response(Vec<u8>),
        /// The first message is something else (a notification, a server request, an
        /// event of another type).
        Other,
        /// No complete message yet.
        Incomplete,
    }

    /// Look at the complete events in `buf` from `*scanned` on, skipping events without
    /// data (priming events, comments); `*scanned` moves past what was looked at.
    pub fn first_message(buf: &[u8], scanned: &mut usize) -> First {
        loop {
            let rest = &buf[*scanned..];
            let Some((event, len)) = next_event(rest) else {
                return First::Incomplete;
            };
            *scanned += len;
            let mut data: Option<Vec<u8>> = None;
            let mut kind_ok = true;
            for line in event.split(|b| *b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let (field, value) = match line.iter().position(|b| *b == b':') {
                    Some(0) => continue,
                    Some(i) => {
                        let v = &line[i + 1..];
                        (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
                    }
                    None => (line, &b""[..]),
                };
                match field {
                    b"data" => {
                        let d = data.get_or_insert_with(Vec::new);
                        if !d.is_empty() {
                            d.push(b'\n');
                        }
                        d.extend_from_slice(value);
                    }
                    b"event" => kind_ok = value == b"message",
                    _ => {}
                }
            }
            let Some(data) = data.filter(|d| !d.is_empty()) else {
                continue;
            };
            if !kind_ok {
                return First::Other;
            }
            return match jsonrpc::head(&data) {
                Some(jsonrpc::Head {
                    id: Some(_),
                    has_method: false,
                }) if serde_json::from_slice::<serde::de::IgnoredAny>(&data).is_ok() => {
                    First::Response(data)
                }
                _ => First::Other,
            };
        }
    }

    /// The first complete event in `b` (without its blank line) and the bytes it takes.
    fn next_event(b: &[u8]) -> Option<(&[u8], usize)> {
        let mut i = 0;
        while i < b.len() {
            // An event ends at an empty line: "\n\n", "\r\n\r\n" or "\r\r".
            if b[i] == b'\n' || b[i] == b'\r' {
                let nl = if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                let j = i + nl;
                if j >= b.len() {
                    return None;
                }
                if b[j] == b'\n' || b[j] == b'\r' {
                    let nl2 = if b[j] == b'\r' {
                        match b.get(j + 1) {
                            Some(b'\n') => 2,
                            Some(_) => 1,
                            // "\r" may be the first half of "\r\n": wait for more.
                            None => return None,
                        }
                    } else {
                        1
                    };
                    return Some((&b[..i], j + nl2));
                }
                i = j;
            } else {
                i += 1;
            }
        }
        None
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn first(s: &str) -> (String, usize) {
            let mut n = 0;
            let r = match first_message(s.as_bytes(), &mut n) {
                First::Response(d) => String::from_utf8(d).unwrap(),
                First::Other => "other".into(),
                First::Incomplete => "incomplete".into(),
            };
            (r, n)
        }

        #[test]
        fn the_first_message_decides() {
            let resp = r#"{"jsonrpc":"2.0","id":5,"result":{}}"#;
            let s = format!("event: message\nid: a-1\ndata: {resp}\n\n");
            assert_eq!(first(&s), (resp.to_string(), s.len()));
            // A priming event first (id, empty data), CRLF line ends, data split in lines.
            let s = "id: 1-0\r\nretry: 1000\r\ndata: \r\n\r\ndata: {\"jsonrpc\":\"2.0\",\r\ndata: \"id\":1,\"result\":{}}\r\n\r\n";
            assert_eq!(first(s).0, "{\"jsonrpc\":\"2.0\",\n\"id\":1,\"result\":{}}");
            // Progress before the response: stream.
            let s = "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n";
            assert_eq!(first(s).0, "other");
            // A server request has a method and an id.
            let s = "data: {\"jsonrpc\":\"2.0\",\"id\":\"s1\",\"method\":\"sampling/createMessage\"}\n\n";
            assert_eq!(first(s).0, "other");
            // Another event type, or data that is not JSON.
            assert_eq!(first("event: ping\ndata: {\"id\":1}\n\n").0, "other");
            assert_eq!(first("data: {\"id\":1,\"result\":\n\n").0, "other");
            // Not complete yet: a comment alone, an event without its blank line.
            assert_eq!(first(": hi\n\n").0, "incomplete");
            assert_eq!(first("data: {\"id\":1,\"result\":{}}\n").0, "incomplete");
            assert_eq!(
                first("data: {\"id\":1,\"result\":{}}\r\n\r").0,
                "incomplete"
            );
        }

        #[test]
        fn scanning_resumes_where_it_stopped() {
            let mut n = 0;
            let mut buf = b"id: 1-0\ndata: \n\n".to_vec();
            assert!(matches!(first_message(&buf, &mut n), First::Incomplete));
            assert_eq!(n, buf.len());
            buf.extend_from_slice(b"data: {\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{}}\n\n");
            assert!(matches!(first_message(&buf, &mut n), First::Response(_)));
        }
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
    rpc: Rpc<'_>,
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
    let req = upstream_request(
        http::Method::POST,
        url,
        headers,
        upstream_session,
        meta.protocol.or(Some(session.protocol.as_str())),
        &[
            (http::header::CONTENT_TYPE, "application/json"),
            (
                http::header::ACCEPT,
                meta.accept.unwrap_or("application/json, text/event-stream"),
            ),
        ],
        bytes::Bytes::copy_from_slice(body),
    )?;
    let resp = send(gw, instance.is_some(), url, req).await?;
    let (reply, response) = if rpc.is_request {
        relay_request(resp, upstream_session).await
    } else {
        (relay(resp, upstream_session), None)
    };
    if rpc.meter {
        let ok = (200..300).contains(&reply.status)
            && response
                .as_deref()
                .is_none_or(|r| !super::is_error_response(r));
        gw.meter.record(meter::Sample {
            user: &session.user,
            deployment: &session.deployment,
            method: rpc.method,
            tool: rpc.tool,
            ok,
            latency_ms: started.elapsed().as_millis() as u64,
            bytes_in: body.len() as u64,
            bytes_out: response.as_ref().map_or(0, |r| r.len() as u64),
            at_ms: gw.ambient.now_ms(),
        });
    }
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
    let mut extra = vec![(http::header::ACCEPT, "text/event-stream")];
    if let Some(id) = last_event_id {
        extra.push((http::HeaderName::from_static("last-event-id"), id));
    }
    let req = upstream_request(
        http::Method::GET,
        url,
        headers,
        upstream_session,
        Some(&session.protocol),
        &extra,
        bytes::Bytes::new(),
    )?;
    let resp = send(gw, instance.is_some(), url, req).await?;
    Ok(relay(resp, upstream_session))
}

pub(super) async fn forward_delete(gw: &Gateway, session: &Session, link: &Link) {
    let Ok((url, headers, upstream_session, instance)) = parts(link) else {
        return;
    };
    let Ok(req) = upstream_request(
        http::Method::DELETE,
        url,
        headers,
        upstream_session,
        Some(&session.protocol),
        &[],
        bytes::Bytes::new(),
    ) else {
        return;
    };
    if let Ok(mut resp) = send(gw, instance.is_some(), url, req).await {
        if instance.is_some() {
            // Read the answer to its end so the pooled connection can be used again.
            while let Ok(Some(_)) = resp.chunk().await {}
        }
    }
}
