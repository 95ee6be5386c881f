//! Downstream MCP sessions: issued by the gateway, bound to the caller who created them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::mpsc;

use super::upstream::Upstream;
use crate::vault::SecretValue;

/// What a session talks to.
pub enum Link {
    Stdio(Arc<Upstream>),
    /// A Streamable HTTP upstream: its URL, headers to add, and its own session id.
    Http {
        url: String,
        headers: Vec<(String, SecretValue)>,
        upstream_session: Mutex<Option<String>>,
        /// The local process serving it, when it is not a remote.
        instance: Option<Arc<crate::runtime::Instance>>,
    },
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
    standalone: Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>,
    server_requests: Mutex<HashMap<String, Value>>,
    subscriptions: Mutex<HashSet<String>>,
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
            server_requests: Mutex::new(HashMap::new()),
            subscriptions: Mutex::new(HashSet::new()),
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

    /// Open the standalone (GET) stream; `None` when one is already open.
    pub fn open_standalone(&self) -> Option<mpsc::UnboundedReceiver<Vec<u8>>> {
        let mut slot = self.standalone.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_some_and(|tx| !tx.is_closed()) {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        *slot = Some(tx);
        Some(rx)
    }

    /// Send on the standalone stream; false when the client has none open.
    pub fn push_standalone(&self, msg: Vec<u8>) -> bool {
        self.standalone
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|tx| tx.send(msg).is_ok())
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
