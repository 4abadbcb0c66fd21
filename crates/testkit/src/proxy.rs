//! A TCP proxy a test can cut and restore, or stall and resume: an outage
//! of a shared server (Redis, PostgreSQL) for one test only, while the
//! server keeps running for every other test.
//!
//! A cut drops every connection (the peers see them close). A stall is a
//! silent link, as when a network drops packets: no byte goes through in
//! either direction and nothing is closed or reset; what either side sent
//! meanwhile is held, and delivered in order on `resume`. New connections
//! are accepted (the kernel would complete the handshake anyway) but reach
//! the target only on `resume`. Unlike a real black hole, the proxy's own
//! kernel acknowledges what it receives, so TCP keepalive and user timeouts
//! do not fire across a stalled proxy: what a stall shows is the
//! application's own bounds, and PostgreSQL's.
//!
//! A proxy can also lose the answer to one request: `hold_replies_after`
//! lets the client's bytes through until they contain a pattern (say, the
//! `COMMIT` of a PostgreSQL transaction, on a link without TLS), then holds
//! everything the target sends back, as if the link died right after the
//! request left: the target acted, and the client never hears of it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};

pub struct TcpProxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    link: Link,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    accept: JoinHandle<()>,
}

/// What flows, shared by every connection of a proxy.
#[derive(Clone)]
struct Link {
    state: Arc<watch::Sender<Flow>>,
    /// Once the client's bytes contain this, replies are held.
    trigger: Arc<Mutex<Option<Vec<u8>>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Both,
    /// Nothing flows (a stall).
    Neither,
    /// The client's bytes flow; the target's are held.
    RequestsOnly,
}

/// Which way a copy goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Request,
    Reply,
}

impl Flow {
    fn lets(self, way: Way) -> bool {
        match self {
            Flow::Both => true,
            Flow::Neither => false,
            Flow::RequestsOnly => way == Way::Request,
        }
    }
}

impl TcpProxy {
    /// A proxy to the tests' Redis (`redis_url()`).
    pub async fn redis() -> TcpProxy {
        let target = crate::redis_url()
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .to_owned();
        Self::to(target).await
    }

    /// A proxy to the tests' PostgreSQL (`server_url()`).
    pub async fn postgres() -> TcpProxy {
        let server = crate::server_url();
        let target = server.rsplit('@').next().unwrap_or(&server).to_owned();
        Self::to(target).await
    }

    /// Forwards a port of its own to `target` (`host:port`).
    pub async fn to(target: String) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let up = Arc::new(AtomicBool::new(true));
        let link = Link {
            state: Arc::new(watch::channel(Flow::Both).0),
            trigger: Arc::new(Mutex::new(None)),
        };
        let connections = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let (up, connections, link) = (up.clone(), connections.clone(), link.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    // Checked and registered under the lock `cut` takes, so
                    // that no connection slips through a cut.
                    let mut open = connections.lock().expect("connections");
                    if !up.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let task = tokio::spawn(forward(client, target.clone(), link.clone()));
                    open.push(task.abort_handle());
                }
            })
        };
        TcpProxy {
            addr,
            up,
            link,
            connections,
            accept,
        }
    }

    /// A Redis URL through this proxy.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// The PostgreSQL URL `url` (`...@host:port/database`) with its host and
    /// port replaced by this proxy's: the same database, through the link.
    pub fn postgres_url(&self, url: &str) -> String {
        let host_port = url
            .rsplit('@')
            .next()
            .and_then(|rest| rest.split('/').next())
            .expect("host:port in the PostgreSQL URL");
        url.replacen(host_port, &self.addr.to_string(), 1)
    }

    /// Drops every connection, and refuses new ones until `restore`.
    pub fn cut(&self) {
        let mut open = self.connections.lock().expect("connections");
        self.up.store(false, Ordering::SeqCst);
        for c in open.drain(..) {
            c.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// Stops every byte in both directions, closing nothing, until `resume`.
    pub fn stall(&self) {
        self.link.state.send_replace(Flow::Neither);
    }

    /// Once a client's bytes contain `pattern`, holds every byte the target
    /// sends back (on every connection), closing nothing, until `resume` or
    /// `cut`: the request that carried it arrives, its answer does not.
    pub fn hold_replies_after(&self, pattern: &[u8]) {
        *self.link.trigger.lock().expect("trigger") = Some(pattern.to_vec());
    }

    /// Whether replies are held (a `hold_replies_after` pattern went by).
    pub fn replies_held(&self) -> bool {
        *self.link.state.borrow() == Flow::RequestsOnly
    }

    /// Delivers what was held, and flows again.
    pub fn resume(&self) {
        self.link.trigger.lock().expect("trigger").take();
        self.link.state.send_replace(Flow::Both);
    }
}

/// Connects `client` to `target` once the link flows, and copies both ways.
async fn forward(client: TcpStream, target: String, link: Link) {
    let mut flowing = link.state.subscribe();
    if flowing.wait_for(|f| *f != Flow::Neither).await.is_err() {
        return;
    }
    let Ok(server) = TcpStream::connect(&target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        copy(client_read, server_write, Way::Request, link.clone()),
        copy(server_read, client_write, Way::Reply, link),
    );
}

/// Copies one way; bytes read while that way is held wait for its end. An
/// end of stream is passed on (a half-close) once the way flows.
async fn copy(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    way: Way,
    link: Link,
) {
    let mut flowing = link.state.subscribe();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // A reset is passed on as an end of stream.
        let n: usize = from.read(&mut buf).await.unwrap_or_default();
        if flowing.wait_for(|f| f.lets(way)).await.is_err() {
            return;
        }
        if n == 0 {
            let _ = to.shutdown().await;
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        if way == Way::Request {
            let mut trigger = link.trigger.lock().expect("trigger");
            let seen = trigger
                .as_ref()
                .is_some_and(|p| buf[..n].windows(p.len()).any(|w| w == p.as_slice()));
            if seen {
                trigger.take();
                link.state.send_replace(Flow::RequestsOnly);
            }
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
