//! A TCP proxy a test can cut and restore: an outage of a shared server
//! (Redis, PostgreSQL) for one test only, while the server keeps running for
//! every other test.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

pub struct TcpProxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
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
        let connections = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let (up, connections) = (up.clone(), connections.clone());
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    // Checked and registered under the lock `cut` takes, so
                    // that no connection slips through a cut.
                    let mut open = connections.lock().expect("connections");
                    if !up.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let target = target.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    open.push(task.abort_handle());
                }
            })
        };
        TcpProxy {
            addr,
            up,
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
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
