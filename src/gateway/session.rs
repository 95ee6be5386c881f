//! Downstream MCP sessions: issued by the gateway, bound to the caller who created them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::mpsc;

use super::upstream::Upstream;
use crate::vault::SecretValue;

/// What a session talks to.
pub enum Link {
    Stdio(Arc<Upstream>),
    /// A Streamable HTTP upstream: its URL (parsed once, not per request), headers to add,
    /// and its own session id.
    Http {
        url: reqwest::Url,
        headers: Vec<(String, SecretValue)>,
        upstream_session: Mutex<Option<String>>,
        /// The local process serving it, when it is not a remote.
        instance: Option<Arc<crate::runtime::Instance>>,
    },
}

/// Events kept per session for `Last-Event-ID` replay (all its streams together); the
/// oldest go first.
pub const REPLAY_EVENTS: usize = 256;
/// How many finished POST streams a session remembers as finished.
const FINISHED_STREAMS: usize = 256;

/// One SSE event as the HTTP layer writes it. Ids are `<stream>-<seq>`: stream 0 is the
/// standalone (GET) stream, POST streams are numbered from 1; seq 0 is a priming event
/// (empty data), so a client can resume before the first message arrives.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<String>,
    /// Empty for a priming event.
    pub data: Arc<[u8]>,
    /// Sent with priming events: how long a client waits before reconnecting.
    pub retry_ms: Option<u64>,
}

/// Reconnection delay announced on priming events.
pub const RETRY_MS: u64 = 1000;

#[derive(Default)]
struct Replay {
    next_stream: u64,
    standalone_seq: u64,
    /// (stream, seq, message), oldest first, at most [`REPLAY_EVENTS`].
    events: VecDeque<(u64, u64, Arc<[u8]>)>,
    finished: VecDeque<u64>,
}

/// A kept message of one stream: its seq and bytes.
pub type Kept = (u64, Arc<[u8]>);

/// Where a `Last-Event-ID` points.
pub fn parse_event_id(id: &str) -> Option<(u64, u64)> {
    let (s, n) = id.trim().split_once('-')?;
    Some((s.parse().ok()?, n.parse().ok()?))
}

pub struct Session {
    pub id: String,
    /// Username of the caller who initialized it; nobody else may use it.
    pub user: String,
    pub deployment: String,
    pub protocol: String,
    /// The caller's declared secrets at initialize, to start a new instance after a restart.
    pub secrets: Vec<(String, SecretValue)>,
    pub link: Mutex<Arc<Link>>,
    standalone: Mutex<Option<mpsc::UnboundedSender<SseEvent>>>,
    replay: Mutex<Replay>,
    replayed: tokio::sync::Notify,
    server_requests: Mutex<HashMap<String, Value>>,
    subscriptions: Mutex<HashSet<String>>,
    /// The client's `capabilities` from its `initialize` (stdio links): a shared upstream
    /// was initialized by the gateway, so the gateway answers for what this client lacks.
    client_capabilities: std::sync::OnceLock<Value>,
    last_used_ms: AtomicI64,
    closed: AtomicBool,
}

impl Session {
    pub fn new(
        id: String,
        user: String,
        deployment: String,
        protocol: String,
        secrets: Vec<(String, SecretValue)>,
        link: Link,
        now_ms: i64,
    ) -> Arc<Self> {
        Arc::new(Session {
            id,
            user,
            deployment,
            protocol,
            secrets,
            link: Mutex::new(Arc::new(link)),
            standalone: Mutex::new(None),
            replay: Mutex::new(Replay {
                next_stream: 1,
                ..Replay::default()
            }),
            replayed: tokio::sync::Notify::new(),
            server_requests: Mutex::new(HashMap::new()),
            subscriptions: Mutex::new(HashSet::new()),
            client_capabilities: std::sync::OnceLock::new(),
            last_used_ms: AtomicI64::new(now_ms),
            closed: AtomicBool::new(false),
        })
    }

    pub fn link(&self) -> Arc<Link> {
        self.link.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_link(&self, link: Link) {
        *self.link.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(link);
    }

    pub fn touch(&self, now_ms: i64) {
        self.last_used_ms.store(now_ms, Ordering::Relaxed);
    }

    pub fn last_used(&self) -> i64 {
        self.last_used_ms.load(Ordering::Relaxed)
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        *self.standalone.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    fn replay(&self) -> std::sync::MutexGuard<'_, Replay> {
        self.replay.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Priming events (an id with empty data) are a 2025-11-25 feature; older clients
    /// may choke on an empty `data`.
    pub fn primes(&self) -> bool {
        self.protocol.as_str() >= "2025-11-25"
    }

    /// Open the standalone (GET) stream; `None` when one is already open. `resume_after`
    /// (from `Last-Event-ID` `0-<seq>`) first replays the standalone messages after seq
    /// that are still kept, and replaces a stream that is still open (the client lost it).
    pub fn open_standalone(
        &self,
        resume_after: Option<u64>,
    ) -> Option<mpsc::UnboundedReceiver<SseEvent>> {
        let mut slot = self.standalone.lock().unwrap_or_else(|p| p.into_inner());
        if resume_after.is_none() && slot.as_ref().is_some_and(|tx| !tx.is_closed()) {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let replay = self.replay();
        let after = resume_after.unwrap_or(replay.standalone_seq);
        for (_, seq, data) in replay.events.iter().filter(|e| e.0 == 0 && e.1 > after) {
            let _ = tx.send(SseEvent {
                id: Some(format!("0-{seq}")),
                data: data.clone(),
                retry_ms: None,
            });
        }
        if self.primes() {
            let _ = tx.send(SseEvent {
                id: Some(format!("0-{}", replay.standalone_seq)),
                data: Arc::from(&b""[..]),
                retry_ms: Some(RETRY_MS),
            });
        }
        drop(replay);
        *slot = Some(tx);
        Some(rx)
    }

    /// Send on the standalone stream; false when the client has none open. What is sent
    /// is kept for replay.
    pub fn push_standalone(&self, msg: Vec<u8>) -> bool {
        let slot = self.standalone.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = slot.as_ref().filter(|tx| !tx.is_closed()) else {
            return false;
        };
        let data: Arc<[u8]> = msg.into();
        let seq = {
            let mut r = self.replay();
            r.standalone_seq += 1;
            let seq = r.standalone_seq;
            push_bounded(&mut r.events, (0, seq, data.clone()));
            seq
        };
        tx.send(SseEvent {
            id: Some(format!("0-{seq}")),
            data,
            retry_ms: None,
        })
        .is_ok()
    }

    /// A new POST response stream's number.
    pub fn open_post_stream(&self) -> u64 {
        let mut r = self.replay();
        let n = r.next_stream;
        r.next_stream += 1;
        n
    }

    /// Keep a message sent (or to be sent) on POST stream `stream`; `last` marks the
    /// response, after which the stream is finished.
    pub fn log_event(&self, stream: u64, seq: u64, data: Arc<[u8]>, last: bool) {
        {
            let mut r = self.replay();
            push_bounded(&mut r.events, (stream, seq, data));
            if last {
                if r.finished.len() >= FINISHED_STREAMS {
                    r.finished.pop_front();
                }
                r.finished.push_back(stream);
            }
        }
        self.replayed.notify_waiters();
    }

    /// The kept messages of POST stream `stream` after `seq`, and whether the stream is
    /// finished; `None` for a stream this session never opened.
    pub fn replay_after(&self, stream: u64, seq: u64) -> Option<(Vec<Kept>, bool)> {
        let r = self.replay();
        if stream == 0 || stream >= r.next_stream {
            return None;
        }
        let events = r
            .events
            .iter()
            .filter(|e| e.0 == stream && e.1 > seq)
            .map(|e| (e.1, e.2.clone()))
            .collect();
        Some((events, r.finished.contains(&stream)))
    }

    /// Resolves at the next [`Session::log_event`]; create it before looking.
    pub fn replayed(&self) -> tokio::sync::futures::Notified<'_> {
        self.replayed.notified()
    }

    pub fn put_server_request(&self, id: String, upstream_id: Value) {
        self.server_requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, upstream_id);
    }

    pub fn take_server_request(&self, id: &str) -> Option<Value> {
        self.server_requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
    }

    /// Record the capabilities the client declared at `initialize` (once).
    pub fn set_client_capabilities(&self, caps: Value) {
        let _ = self.client_capabilities.set(caps);
    }

    /// Whether this session's client declared the capability a server→client request
    /// needs (`sampling` — with `tools` when the request carries tools —, `elicitation` in
    /// the request's mode, `roots`). Other methods, and sessions that never recorded
    /// capabilities, are left to the client to answer.
    pub fn accepts_server_request(&self, method: &str, params: Option<&Value>) -> bool {
        let Some(caps) = self.client_capabilities.get() else {
            return true;
        };
        let has =
            |v: Option<&Value>, key: &str| v.and_then(|c| c.get(key)).is_some_and(|c| !c.is_null());
        match method {
            "sampling/createMessage" => {
                has(Some(caps), "sampling")
                    && (!has(params, "tools") || has(caps.get("sampling"), "tools"))
            }
            "elicitation/create" => {
                let Some(e) = caps.get("elicitation").filter(|e| !e.is_null()) else {
                    return false;
                };
                match params.and_then(|p| p.get("mode")).and_then(Value::as_str) {
                    Some("url") => has(Some(e), "url"),
                    // Form mode: declared, or implied by anything but a url-only object (an
                    // empty one is form-only by the spec's compatibility rule).
                    _ => has(Some(e), "form") || !has(Some(e), "url"),
                }
            }
            "roots/list" => has(Some(caps), "roots"),
            _ => true,
        }
    }

    pub fn subscribe(&self, uri: &str, on: bool) {
        let mut s = self.subscriptions.lock().unwrap_or_else(|p| p.into_inner());
        if on {
            s.insert(uri.to_string());
        } else {
            s.remove(uri);
        }
    }

    pub fn is_subscribed(&self, uri: &str) -> bool {
        self.subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(uri)
    }
}

fn push_bounded(events: &mut VecDeque<(u64, u64, Arc<[u8]>)>, e: (u64, u64, Arc<[u8]>)) {
    if events.len() >= REPLAY_EVENTS {
        events.pop_front();
    }
    events.push_back(e);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(protocol: &str) -> Arc<Session> {
        let link = Link::Http {
            url: "http://127.0.0.1:9/mcp".parse().unwrap(),
            headers: Vec::new(),
            upstream_session: Mutex::new(None),
            instance: None,
        };
        Session::new(
            "s".into(),
            "u".into(),
            "d".into(),
            protocol.into(),
            Vec::new(),
            link,
            0,
        )
    }

    #[test]
    fn server_requests_need_the_clients_declared_capability() {
        use serde_json::json;
        let s = session("2025-11-25");
        assert!(
            s.accepts_server_request("sampling/createMessage", None),
            "unknown: the client decides"
        );
        s.set_client_capabilities(json!({"sampling": {}, "elicitation": {}}));
        let p = json!({"messages": []});
        assert!(s.accepts_server_request("sampling/createMessage", Some(&p)));
        let tools = json!({"messages": [], "tools": [{"name": "t"}]});
        assert!(!s.accepts_server_request("sampling/createMessage", Some(&tools)));
        assert!(s.accepts_server_request("elicitation/create", Some(&json!({"message": "m"}))));
        let url = json!({"mode": "url", "url": "https://x"});
        assert!(!s.accepts_server_request("elicitation/create", Some(&url)));
        assert!(!s.accepts_server_request("roots/list", None));
        assert!(
            s.accepts_server_request("tasks/get", None),
            "not a capability-gated method"
        );

        let s = session("2025-11-25");
        s.set_client_capabilities(
            json!({"roots": {"listChanged": true}, "elicitation": {"url": {}}}),
        );
        assert!(!s.accepts_server_request("sampling/createMessage", Some(&p)));
        assert!(s.accepts_server_request("roots/list", None));
        assert!(s.accepts_server_request("elicitation/create", Some(&url)));
        assert!(
            !s.accepts_server_request("elicitation/create", Some(&json!({"message": "m"}))),
            "url only"
        );
    }

    #[test]
    fn event_ids_parse_as_stream_and_seq() {
        assert_eq!(parse_event_id("3-17"), Some((3, 17)));
        assert_eq!(parse_event_id(" 0-0 "), Some((0, 0)));
        for bad in ["", "3", "a-1", "1-b", "-1", "1--1"] {
            assert_eq!(parse_event_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn replay_is_per_stream_and_bounded() {
        let s = session("2025-11-25");
        let a = s.open_post_stream();
        let b = s.open_post_stream();
        assert_ne!(a, b);
        assert!(a > 0, "stream 0 is the GET stream");
        s.log_event(a, 1, Arc::from(&b"a1"[..]), false);
        s.log_event(b, 1, Arc::from(&b"b1"[..]), true);
        s.log_event(a, 2, Arc::from(&b"a2"[..]), true);
        let (evs, done) = s.replay_after(a, 1).unwrap();
        assert!(done);
        assert_eq!(evs.len(), 1);
        assert_eq!(&*evs[0].1, b"a2");
        assert!(s.replay_after(b + 1, 0).is_none(), "never opened");
        assert!(s.replay_after(0, 0).is_none(), "not a POST stream");
        // The buffer keeps the newest REPLAY_EVENTS events of all streams together.
        let c = s.open_post_stream();
        for n in 1..=(REPLAY_EVENTS as u64 + 10) {
            s.log_event(c, n, Arc::from(&b"x"[..]), false);
        }
        let (evs, done) = s.replay_after(c, 0).unwrap();
        assert!(!done);
        assert_eq!(evs.len(), REPLAY_EVENTS);
        assert_eq!(evs[0].0, 11);
        assert!(s.replay_after(a, 0).unwrap().0.is_empty(), "evicted");
    }

    #[test]
    fn the_get_stream_primes_only_for_2025_11_25_and_replays_after_resume() {
        let old = session("2025-06-18");
        let mut rx = old.open_standalone(None).unwrap();
        assert!(rx.try_recv().is_err(), "no priming event before 2025-11-25");
        assert!(old.push_standalone(b"m1".to_vec()));
        assert_eq!(rx.try_recv().unwrap().id.as_deref(), Some("0-1"));

        let s = session("2025-11-25");
        let mut rx = s.open_standalone(None).unwrap();
        let p = rx.try_recv().unwrap();
        assert_eq!(
            (p.id.as_deref(), p.data.len(), p.retry_ms),
            (Some("0-0"), 0, Some(RETRY_MS))
        );
        assert!(
            s.open_standalone(None).is_none(),
            "one GET stream at a time"
        );
        for m in [&b"m1"[..], b"m2", b"m3"] {
            assert!(s.push_standalone(m.to_vec()));
        }
        let mut rx2 = s.open_standalone(Some(1)).unwrap();
        let got: Vec<_> = std::iter::from_fn(|| rx2.try_recv().ok()).collect();
        let ids: Vec<_> = got.iter().map(|e| e.id.clone().unwrap()).collect();
        assert_eq!(
            ids,
            ["0-2", "0-3", "0-3"],
            "m2, m3, then priming at the last id"
        );
        assert_eq!(&*got[0].data, b"m2");
        assert!(got[2].data.is_empty());
        drop(rx);
    }
}
