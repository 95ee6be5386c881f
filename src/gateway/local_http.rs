//! The gateway's client for the Streamable HTTP servers Sigil runs itself (plain HTTP/1.1
//! on loopback): a keep-alive pool per address, on hyper's connection API.
//!
//! Why not reqwest, which remote upstreams keep using: its pool hands a connection back by
//! spawning a task whenever a response body is still streaming when the head arrives, and
//! an MCP server answers with an SSE body, so every call spawned one and woke the runtime's
//! other worker thread; it also parses the URL and runs its redirect policy per request.
//! Here a connection goes back to the pool when its body has been read to the end, by
//! whoever read it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;

type Sender = SendRequest<Full<Bytes>>;

/// Idle connections kept per address; more are closed when they come back.
const IDLE_PER_ADDR: usize = 256;

pub struct LocalHttp {
    idle: Mutex<HashMap<SocketAddr, Vec<Sender>>>,
    connect_timeout: Duration,
}

/// An answer whose body is read with [`Response::chunk`].
pub struct Response {
    pub head: http::response::Parts,
    body: Option<Incoming>,
    sender: Option<Sender>,
    addr: SocketAddr,
    pool: Arc<LocalHttp>,
}

impl Response {
    /// The next piece of the body; `None` at its end, when the connection goes back to the
    /// pool. A response dropped before its end closes its connection instead.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        while let Some(body) = self.body.as_mut() {
            match body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => return Ok(Some(data)),
                    // Trailers and empty frames carry nothing to relay.
                    _ => {}
                },
                Some(Err(e)) => {
                    self.body = None;
                    self.sender = None;
                    return Err(e.to_string());
                }
                None => {
                    self.body = None;
                    if let Some(s) = self.sender.take() {
                        self.pool.put(self.addr, s);
                    }
                }
            }
        }
        Ok(None)
    }
}

impl LocalHttp {
    pub fn new(connect_timeout: Duration) -> Arc<Self> {
        Arc::new(LocalHttp {
            idle: Mutex::new(HashMap::new()),
            connect_timeout,
        })
    }

    /// Send `req` (origin-form URI, with its Host header) to `addr`.
    pub async fn send(
        self: &Arc<Self>,
        addr: SocketAddr,
        mut req: http::Request<Full<Bytes>>,
    ) -> Result<Response, String> {
        // A pooled connection the server closed meanwhile (its keep-alive timeout) either
        // says so before the request goes out or hands the request back unsent: then the
        // next one is tried, and the last attempt always uses a fresh connection.
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let pooled = if attempt < ATTEMPTS {
                self.checkout(addr)
            } else {
                None
            };
            let reused = pooled.is_some();
            let mut sender = match pooled {
                Some(s) => s,
                None => self.connect(addr).await?,
            };
            if let Err(e) = sender.ready().await {
                if reused {
                    continue;
                }
                return Err(e.to_string());
            }
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let (head, body) = resp.into_parts();
                    return Ok(Response {
                        head,
                        body: Some(body),
                        sender: Some(sender),
                        addr,
                        pool: self.clone(),
                    });
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(e.into_error().to_string()),
                },
            }
        }
        Err("no connection to the server".into())
    }

    fn checkout(&self, addr: SocketAddr) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(&addr)?;
        while let Some(s) = list.pop() {
            if !s.is_closed() {
                return Some(s);
            }
        }
        None
    }

    fn put(&self, addr: SocketAddr, s: Sender) {
        if s.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.entry(addr).or_default();
        if list.len() >= IDLE_PER_ADDR {
            list.retain(|s| !s.is_closed());
        }
        if list.len() < IDLE_PER_ADDR {
            list.push(s);
        }
    }

    async fn connect(&self, addr: SocketAddr) -> Result<Sender, String> {
        let tcp = tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| format!("connecting to {addr} timed out"))?
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        // Requests and answers are small single writes; Nagle would hold them back.
        let _ = tcp.set_nodelay(true);
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .map_err(|e| e.to_string())?;
        // The connection's I/O runs in its own task for as long as the connection lives.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    fn post(addr: SocketAddr) -> http::Request<Full<Bytes>> {
        http::Request::post("/mcp")
            .header("host", addr.to_string())
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap()
    }

    /// A server that answers every request with a chunked body and, like node's
    /// keep-alive timeout, closes a connection idle for 50 ms; it counts connections.
    async fn server() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    loop {
                        // Head and the two-byte body.
                        while !got.windows(6).any(|w| w == b"\r\n\r\n{}") {
                            let read =
                                tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf));
                            match read.await {
                                Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
                                _ => return,
                            }
                        }
                        got.clear();
                        let reply = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n\
                                     6\r\ndata: \r\n2\r\nok\r\n0\r\n\r\n";
                        if s.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    async fn body(mut r: Response) -> String {
        let mut out = Vec::new();
        while let Some(c) = r.chunk().await.unwrap() {
            out.extend_from_slice(&c);
        }
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn connections_are_reused_once_a_body_is_read_and_replaced_when_closed() {
        let (addr, accepted) = server().await;
        let client = LocalHttp::new(Duration::from_secs(5));
        let connections = || accepted.load(std::sync::atomic::Ordering::SeqCst);
        for round in 1..=3 {
            for _ in 0..4 {
                let r = client.send(addr, post(addr)).await.expect("answered");
                assert_eq!(r.head.status, 200);
                assert_eq!(body(r).await, "data: ok");
            }
            assert_eq!(connections(), round, "one connection per burst of calls");
            // Idle long enough for the server to close it: the next call gets a new one.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // A body not read to its end does not give its connection back.
        let r = client.send(addr, post(addr)).await.unwrap();
        drop(r);
        let r = client.send(addr, post(addr)).await.unwrap();
        assert_eq!(body(r).await, "data: ok");
        assert_eq!(connections(), 5);
    }

    #[tokio::test]
    async fn an_answer_that_closes_its_connection_is_read_whole() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let reply =
                    "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello";
                let _ = s.write_all(reply.as_bytes()).await;
                // Dropping the socket closes it right after the answer.
            }
        });
        let client = LocalHttp::new(Duration::from_secs(5));
        for _ in 0..3 {
            let r = client.send(addr, post(addr)).await.expect("answered");
            assert_eq!(body(r).await, "hello");
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_an_error_not_a_hang() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let client = LocalHttp::new(Duration::from_secs(5));
        let e = client.send(addr, post(addr)).await.err().expect("fails");
        assert!(e.contains("cannot connect"), "{e}");
    }
}
