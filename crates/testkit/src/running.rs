//! An app of the crate under test running in the test's own process (a
//! server's or a worker's `run_until`): stopped as SIGTERM would stop it,
//! or aborted when its guard drops.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What `run_until` waits for: completes when the test stops the app.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

pub struct Running<T> {
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<T>>,
}

impl<T: Send + 'static> Running<T> {
    /// Spawns `run(shutdown)`, e.g. `Running::spawn(|s| app.run_until(s))`.
    pub fn spawn<Fut>(run: impl FnOnce(Shutdown) -> Fut) -> Running<T>
    where
        Fut: Future<Output = T> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(run(Box::pin(async {
            let _ = stopped.await;
        })));
        Running {
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Tells it to stop, without waiting.
    pub fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Tells it to stop and waits, `within` at most, for what it returns:
    /// None if it did not stop in time (or panicked).
    pub async fn stop(mut self, within: Duration) -> Option<T> {
        self.shut_down();
        let handle = self.handle.take()?;
        tokio::time::timeout(within, handle).await.ok()?.ok()
    }
}

impl<T> Drop for Running<T> {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}
