//! One stdio server instance shared by many downstream sessions.
//!
//! The gateway initializes the server once (the runtime does the handshake) and multiplexes
//! every session of the same (deployment, secret set) over that one stdio session:
//! request ids are rewritten to the gateway's own numbers and back, progress tokens to
//! `sgl-p-<n>` and back, server→client requests get `sgl-s-<n>` ids on the way to the
//! client whose request caused them, and cancellations are mapped to the rewritten id.
//! Nothing here touches the store; the hot path is one map insert and one map remove.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use serde_json::{Value, json};

use super::jsonrpc;
use super::session::Session;
use crate::runtime::{Instance, Sink};

/// A message for one downstream request's response stream.
#[derive(Debug)]
pub enum Outbound {
    /// A notification or server→client request related to the request.
    Message(Vec<u8>),
    /// The response; the stream ends after it.
    Final(Vec<u8>),
}

/// One request's way back to its HTTP response: usually just the response, sometimes
/// progress, logs or server requests before it. Cheaper than an mpsc channel per request
/// (one small allocation, no block list) with the same contract: `send` fails once the
/// receiver is gone, `recv` ends once every sender is gone.
struct InboxShared {
    state: Mutex<InboxState>,
    notify: tokio::sync::Notify,
}

struct InboxState {
    queue: std::collections::VecDeque<Outbound>,
    senders: usize,
    receiver: bool,
}

pub struct InboxTx(Arc<InboxShared>);
pub struct InboxRx(Arc<InboxShared>);

fn inbox() -> (InboxTx, InboxRx) {
    let shared = Arc::new(InboxShared {
        state: Mutex::new(InboxState {
            queue: std::collections::VecDeque::new(),
            senders: 1,
            receiver: true,
        }),
        notify: tokio::sync::Notify::new(),
    });
    (InboxTx(shared.clone()), InboxRx(shared))
}

impl InboxShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, InboxState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl InboxTx {
    pub fn send(&self, msg: Outbound) -> Result<(), Outbound> {
        {
            let mut st = self.0.lock();
            if !st.receiver {
                return Err(msg);
            }
            st.queue.push_back(msg);
        }
        // One receiver: a permit stored while it is not waiting is not lost.
        self.0.notify.notify_one();
        Ok(())
    }
}

impl Clone for InboxTx {
    fn clone(&self) -> Self {
        self.0.lock().senders += 1;
        InboxTx(self.0.clone())
    }
}

impl Drop for InboxTx {
    fn drop(&mut self) {
        let last = {
            let mut st = self.0.lock();
            st.senders -= 1;
            st.senders == 0
        };
        if last {
            self.0.notify.notify_one();
        }
    }
}

impl InboxRx {
    /// The next message; `None` once every sender is gone and nothing is queued.
    pub async fn recv(&mut self) -> Option<Outbound> {
        loop {
            {
                let mut st = self.0.lock();
                if let Some(m) = st.queue.pop_front() {
                    return Some(m);
                }
                if st.senders == 0 {
                    return None;
                }
            }
            self.0.notify.notified().await;
        }
    }
}

impl Drop for InboxRx {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.receiver = false;
        st.queue.clear();
    }
}

struct Pending {
    session: Weak<Session>,
    orig_id: Value,
    tx: InboxTx,
    progress: Option<(String, Value)>,
}

pub struct Upstream {
    pub instance: Arc<Instance>,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    progress: Mutex<HashMap<String, u64>>,
    sessions: Mutex<Vec<Weak<Session>>>,
}

const PROGRESS_PREFIX: &str = "sgl-p-";
const SERVER_REQ_PREFIX: &str = "sgl-s-";

impl Upstream {
    pub fn new(instance: Arc<Instance>) -> Arc<Self> {
        let up = Arc::new(Upstream {
            instance,
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
            sessions: Mutex::new(Vec::new()),
        });
        let weak: Weak<Upstream> = Arc::downgrade(&up);
        let sink: Weak<dyn Sink> = weak;
        up.instance.attach(sink);
        up
    }

    pub fn add_session(&self, s: &Arc<Session>) {
        let mut v = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        v.retain(|w| w.strong_count() > 0);
        v.push(Arc::downgrade(s));
    }

    fn live_sessions(&self) -> Vec<Arc<Session>> {
        let mut v = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        v.retain(|w| w.strong_count() > 0);
        v.iter()
            .filter_map(Weak::upgrade)
            .filter(|s| !s.is_closed())
            .collect()
    }

    /// Forward a request (`msg`, parsed from `raw`); its messages and response arrive on the
    /// returned channel. The second value is the gateway id, for [`Upstream::cancel`].
    pub async fn request(
        &self,
        session: &Arc<Session>,
        mut msg: Value,
        raw: &[u8],
    ) -> Result<(InboxRx, u64), String> {
        let gw = self.next_id.fetch_add(1, Ordering::Relaxed);
        let orig_id = msg.get("id").cloned().unwrap_or(Value::Null);
        msg["id"] = json!(gw);
        let mut progress = None;
        if let Some(tok) = msg.pointer_mut("/params/_meta/progressToken") {
            let mine = format!("{PROGRESS_PREFIX}{gw}");
            progress = Some((
                mine.clone(),
                std::mem::replace(tok, Value::String(mine.clone())),
            ));
            self.progress
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(mine, gw);
        }
        let progress_is_none = progress.is_none();
        let (tx, rx) = inbox();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                gw,
                Pending {
                    session: Arc::downgrade(session),
                    orig_id,
                    tx,
                    progress,
                },
            );
        // The common case (no progress token to map) swaps the id in the bytes as received.
        let spliced = if progress_is_none {
            jsonrpc::head(raw)
                .and_then(|h| h.id)
                .map(|r| jsonrpc::splice(raw, r, gw.to_string().as_bytes()))
        } else {
            None
        };
        let line = match spliced {
            Some(l) => l,
            None => serde_json::to_vec(&msg).map_err(|e| e.to_string())?,
        };
        if let Err(e) = self.instance.send(line).await {
            self.forget(gw);
            return Err(e.to_string());
        }
        Ok((rx, gw))
    }

    fn forget(&self, gw: u64) -> Option<Pending> {
        let p = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&gw)?;
        if let Some((tok, _)) = &p.progress {
            self.progress
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(tok);
        }
        Some(p)
    }

    /// Give up on a request (timeout): tell the server and forget it.
    pub async fn cancel(&self, gw: u64, reason: &str) {
        if self.forget(gw).is_some() {
            let note = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": gw, "reason": reason}});
            let _ = self.instance.send(note.to_string().into_bytes()).await;
        }
    }

    /// A notification from the client: cancellations are mapped to the rewritten id.
    pub async fn notify(&self, session: &Arc<Session>, mut msg: Value) -> Result<(), String> {
        if msg.get("method").and_then(Value::as_str) == Some("notifications/cancelled") {
            let Some(orig) = msg.pointer("/params/requestId").cloned() else {
                return Ok(());
            };
            let gw = {
                let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                pending
                    .iter()
                    .find(|(_, p)| {
                        p.orig_id == orig
                            && p.session
                                .upgrade()
                                .is_some_and(|s| Arc::ptr_eq(&s, session))
                    })
                    .map(|(gw, _)| *gw)
            };
            // Not ours (finished, or never sent): nothing to cancel.
            let Some(gw) = gw else { return Ok(()) };
            msg["params"]["requestId"] = json!(gw);
        }
        let line = serde_json::to_vec(&msg).map_err(|e| e.to_string())?;
        self.instance.send(line).await.map_err(|e| e.to_string())
    }

    /// The client's answer to a server→client request we relayed.
    pub async fn respond(&self, session: &Session, mut msg: Value) -> Result<(), String> {
        let Some(id) = msg.get("id").and_then(Value::as_str) else {
            return Ok(());
        };
        let Some(orig) = session.take_server_request(id) else {
            return Ok(());
        };
        msg["id"] = orig;
        let line = serde_json::to_vec(&msg).map_err(|e| e.to_string())?;
        self.instance.send(line).await.map_err(|e| e.to_string())
    }

    /// A response, its id swapped back in place (no parse into a `Value`, no re-serializing).
    fn deliver_response_bytes(&self, gw: u64, line: &[u8], id: std::ops::Range<usize>) {
        // The general path drops what is not JSON; so does this one, without allocating.
        if serde_json::from_slice::<serde::de::IgnoredAny>(line).is_err() {
            return;
        }
        let Some(p) = self.forget(gw) else { return };
        let Ok(orig) = serde_json::to_vec(&p.orig_id) else {
            return;
        };
        let _ = p.tx.send(Outbound::Final(jsonrpc::splice(line, id, &orig)));
    }

    fn deliver_response(&self, mut msg: Value) {
        let Some(gw) = msg.get("id").and_then(Value::as_u64) else {
            return;
        };
        let Some(p) = self.forget(gw) else { return };
        msg["id"] = p.orig_id;
        if let Ok(bytes) = serde_json::to_vec(&msg) {
            let _ = p.tx.send(Outbound::Final(bytes));
        }
    }

    /// Where a message that names no request goes: the latest request in flight when all
    /// requests in flight belong to one session; else the standalone stream when only one
    /// session uses this instance. Otherwise it cannot be attributed without guessing, and
    /// guessing could show one client another's traffic.
    fn attribute(&self) -> Option<(Arc<Session>, Option<InboxTx>)> {
        {
            let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let mut owner: Option<(Arc<Session>, u64, InboxTx)> = None;
            for (gw, p) in pending.iter() {
                let Some(s) = p.session.upgrade() else {
                    continue;
                };
                match &owner {
                    None => owner = Some((s, *gw, p.tx.clone())),
                    Some((o, _, _)) if !Arc::ptr_eq(o, &s) => return None,
                    Some((_, best, _)) if gw > best => owner = Some((s, *gw, p.tx.clone())),
                    Some(_) => {}
                }
            }
            if let Some((s, _, tx)) = owner {
                return Some((s, Some(tx)));
            }
        }
        let live = self.live_sessions();
        if live.len() == 1 {
            return live.into_iter().next().map(|s| (s, None));
        }
        None
    }

    fn deliver_related(&self, msg: &Value) -> bool {
        let Ok(bytes) = serde_json::to_vec(msg) else {
            return false;
        };
        match self.attribute() {
            Some((_, Some(tx))) => tx.send(Outbound::Message(bytes)).is_ok(),
            Some((s, None)) => s.push_standalone(bytes),
            None => false,
        }
    }

    fn on_notification(&self, method: &str, mut msg: Value) {
        match method {
            "notifications/progress" => {
                let Some(tok) = msg.pointer("/params/progressToken").and_then(Value::as_str) else {
                    return;
                };
                let Some(gw) = self
                    .progress
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(tok)
                    .copied()
                else {
                    return;
                };
                let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(p) = pending.get(&gw) {
                    if let Some((_, orig)) = &p.progress {
                        msg["params"]["progressToken"] = orig.clone();
                    }
                    if let Ok(bytes) = serde_json::to_vec(&msg) {
                        let _ = p.tx.send(Outbound::Message(bytes));
                    }
                }
            }
            "notifications/tools/list_changed"
            | "notifications/prompts/list_changed"
            | "notifications/resources/list_changed" => {
                if let Ok(bytes) = serde_json::to_vec(&msg) {
                    for s in self.live_sessions() {
                        s.push_standalone(bytes.clone());
                    }
                }
            }
            "notifications/resources/updated" => {
                let uri = msg
                    .pointer("/params/uri")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if let Ok(bytes) = serde_json::to_vec(&msg) {
                    for s in self.live_sessions() {
                        if s.is_subscribed(&uri) {
                            s.push_standalone(bytes.clone());
                        }
                    }
                }
            }
            _ => {
                if !self.deliver_related(&msg) {
                    tracing::debug!(
                        method,
                        "dropped a server notification no session can be given"
                    );
                }
            }
        }
    }

    fn on_server_request(&self, method: &str, mut msg: Value) {
        let child_id = msg.get("id").cloned().unwrap_or(Value::Null);
        if method == "ping" {
            self.reply_to_server(json!({"jsonrpc": "2.0", "id": child_id, "result": {}}));
            return;
        }
        match self.attribute() {
            // The upstream was initialized once with every capability the gateway can relay;
            // a client that did not declare this one gets the error it would give itself.
            Some((session, _)) if !session.accepts_server_request(method, msg.get("params")) => {
                self.reply_to_server(json!({"jsonrpc": "2.0", "id": child_id, "error": {
                    "code": -32601,
                    "message": format!("Method not found: the client did not declare the capability {method} needs"),
                }}));
            }
            Some((session, tx)) => {
                let sid = format!(
                    "{SERVER_REQ_PREFIX}{}",
                    self.next_id.fetch_add(1, Ordering::Relaxed)
                );
                session.put_server_request(sid.clone(), child_id.clone());
                msg["id"] = Value::String(sid.clone());
                let Ok(bytes) = serde_json::to_vec(&msg) else {
                    return;
                };
                let sent = match tx {
                    Some(tx) => tx.send(Outbound::Message(bytes)).is_ok(),
                    None => session.push_standalone(bytes),
                };
                if !sent {
                    session.take_server_request(&sid);
                    self.refuse_server_request(method, child_id);
                }
            }
            None => self.refuse_server_request(method, child_id),
        }
    }

    fn refuse_server_request(&self, method: &str, id: Value) {
        let reply = if method == "roots/list" {
            json!({"jsonrpc": "2.0", "id": id, "result": {"roots": []}})
        } else {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603,
                "message": "no connected client can answer this request"}})
        };
        self.reply_to_server(reply);
    }

    fn reply_to_server(&self, msg: Value) {
        let instance = self.instance.clone();
        tokio::spawn(async move {
            let _ = instance.send(msg.to_string().into_bytes()).await;
        });
    }
}

impl Sink for Upstream {
    fn message(&self, line: Vec<u8>) {
        if let Some(jsonrpc::Head {
            id: Some(id),
            has_method: false,
        }) = jsonrpc::head(&line)
        {
            let gw = std::str::from_utf8(&line[id.clone()])
                .ok()
                .and_then(|s| s.parse::<u64>().ok());
            if let Some(gw) = gw {
                self.deliver_response_bytes(gw, &line, id);
                return;
            }
        }
        let Ok(msg) = serde_json::from_slice::<Value>(&line) else {
            tracing::debug!("dropped a stdout line that is not JSON");
            return;
        };
        let method = msg.get("method").and_then(Value::as_str).map(str::to_owned);
        match (method, msg.get("id").is_some()) {
            (Some(m), true) => self.on_server_request(&m, msg),
            (Some(m), false) => self.on_notification(&m, msg),
            (None, true) => self.deliver_response(msg),
            (None, false) => {}
        }
    }

    fn exited(&self, reason: &str) {
        let drained: Vec<Pending> = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, p)| p)
            .collect();
        self.progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        for p in drained {
            let err = json!({"jsonrpc": "2.0", "id": p.orig_id, "error": {
                "code": -32603,
                "message": format!("the MCP server stopped before answering ({reason}); it is restarted automatically, retry the request"),
            }});
            let _ = p.tx.send(Outbound::Final(err.to_string().into_bytes()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn inbox_keeps_order_and_ends_like_a_channel() {
        let (tx, mut rx) = inbox();
        let tx2 = tx.clone();
        assert!(tx.send(Outbound::Message(b"a".to_vec())).is_ok());
        let waiter = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(m) = rx.recv().await {
                got.push(match m {
                    Outbound::Message(b) | Outbound::Final(b) => b,
                });
            }
            got
        });
        tokio::task::yield_now().await;
        assert!(tx2.send(Outbound::Final(b"b".to_vec())).is_ok());
        drop(tx);
        drop(tx2);
        assert_eq!(waiter.await.unwrap(), vec![b"a".to_vec(), b"b".to_vec()]);

        let (tx, rx) = inbox();
        drop(rx);
        assert!(
            tx.send(Outbound::Final(Vec::new())).is_err(),
            "receiver gone"
        );
    }
}
