//! The server's open WebSocket connections: told to close when the server
//! shuts down, and waited for (briefly) before the process exits.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;

#[derive(Clone, Default)]
pub struct Connections {
    going_away: Arc<watch::Sender<bool>>,
    open: Arc<std::sync::atomic::AtomicUsize>,
}

impl Connections {
    /// Asks every connection to close with 1001.
    pub fn go_away(&self) {
        self.going_away.send_replace(true);
    }

    /// Completes once `go_away` was called.
    pub async fn going_away(&self) {
        let mut going_away = self.going_away.subscribe();
        let _ = going_away.wait_for(|away| *away).await;
    }

    /// Waits until every connection has closed, at most `within`.
    pub async fn wait_closed(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.open.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Counts a connection as open until the guard drops.
    pub fn track(&self) -> Tracked {
        self.open.fetch_add(1, Ordering::AcqRel);
        Tracked(Arc::clone(&self.open))
    }
}

/// An open connection, counted until dropped.
pub struct Tracked(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
