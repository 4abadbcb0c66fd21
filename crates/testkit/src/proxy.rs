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
    /// True while stalled.
    stalled: watch::Sender<bool>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    accept: JoinHandle<()>,
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
        let (stalled, _) = watch::channel(false);
        let connections = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let (up, connections, stalled) = (up.clone(), connections.clone(), stalled.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    // Checked and registered under the lock `cut` takes, so
                    // that no connection slips through a cut.
                    let mut open = connections.lock().expect("connections");
                    if !up.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let target = target.clone();
                    let flowing = stalled.subscribe();
                    let task = tokio::spawn(forward(client, target, flowing));
                    open.push(task.abort_handle());
                }
            })
        };
        TcpProxy {
            addr,
            up,
            stalled,
            connections,
            accept,
        }
    }

    /// A Redis URL through this proxy.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
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
        self.stalled.send_replace(true);
    }

    /// Delivers what was held during the stall, and flows again.
    pub fn resume(&self) {
        self.stalled.send_replace(false);
    }
}

/// Connects `client` to `target` once the link flows, and copies both ways.
async fn forward(client: TcpStream, target: String, mut flowing: watch::Receiver<bool>) {
    if flowing.wait_for(|stalled| !*stalled).await.is_err() {
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
        copy(client_read, server_write, flowing.clone()),
        copy(server_read, client_write, flowing),
    );
}

/// Copies one direction; bytes read during a stall wait for its end. An end
/// of stream is passed on (a half-close) once the link flows.
async fn copy(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut flowing: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // A reset is passed on as an end of stream.
        let n: usize = from.read(&mut buf).await.unwrap_or_default();
        if flowing.wait_for(|stalled| !*stalled).await.is_err() {
            return;
        }
        if n == 0 {
            let _ = to.shutdown().await;
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
