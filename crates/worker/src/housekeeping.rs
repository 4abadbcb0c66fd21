//! Keeps the queue from growing without end: every minute, forget the jobs
//! that finished long enough ago (see `holdfast_queue::Retention`).

use std::time::Duration;

use holdfast_queue::{ReleaseQueue, Retention};
use tokio::sync::watch;
use tracing::{debug, info};

const EVERY: Duration = Duration::from_secs(60);

pub async fn run_housekeeping(queue: ReleaseQueue, mut shutdown: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            _ = ticks.tick() => {}
        }
        match queue.purge_finished(Retention::default()).await {
            Ok(0) => {}
            Ok(n) => info!(forgotten = n, "forgot finished release jobs"),
            // Redis down: the job worker reports it; try again next minute.
            Err(e) => debug!(error = %e, "could not forget finished release jobs"),
        }
    }
}
