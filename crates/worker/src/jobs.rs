//! The apalis worker that consumes the release queue, kept running: when
//! Redis goes away apalis ends the worker with an error, and this loop starts
//! a new one once Redis answers again.
//!
//! Each run registers under a name of its own. apalis-redis refuses to
//! register a name seen alive within the heartbeat threshold, and only
//! re-enqueues the in-flight jobs of a name that stopped beating; a fresh
//! name leaves the jobs of a crashed (or killed) run to be re-enqueued by the
//! next heartbeat of any live worker once it has been silent for
//! `HEARTBEAT_INTERVAL * MISSED_HEARTBEATS`.

use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use holdfast_queue::{POLL_INTERVAL, ReleaseQueue};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::release::{JobContext, release_task};
use crate::telemetry::RELEASE_JOBS_CONSUMING;

/// Consumes release jobs until `shutdown` turns true, then lets the jobs in
/// hand finish (apalis stops fetching, drains, acknowledges, and puts back
/// the ones it fetched but had not started).
pub async fn run_jobs(
    queue: ReleaseQueue,
    ctx: Arc<JobContext>,
    concurrency: usize,
    replica: String,
    mut shutdown: watch::Receiver<bool>,
) {
    // Registered now, so that a worker that never gets going shows 0.
    let consuming = metrics::gauge!(RELEASE_JOBS_CONSUMING);
    let mut generation = 0u32;
    loop {
        if *shutdown.borrow() {
            break;
        }
        generation += 1;
        let name = format!("{replica}-{generation}");
        let stop = {
            let mut shutdown = shutdown.clone();
            async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
                Ok::<(), std::io::Error>(())
            }
        };
        let result = match queue.storage().await {
            Ok(storage) => {
                let worker = WorkerBuilder::new(name.as_str())
                    .backend(storage.poll_with_interval(POLL_INTERVAL))
                    .concurrency(concurrency)
                    .data(ctx.clone())
                    .build(release_task);
                info!(worker.name = %name, queue = queue.queue_name(), concurrency, "consuming release jobs");
                consuming.increment(1.0);
                let result = worker.run_until(stop).await;
                consuming.decrement(1.0);
                result.map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(()) => {
                forget_worker(&queue, &name).await;
                break;
            }
            Err(e) => {
                warn!(worker.name = %name, error = %e, "release job worker stopped; restarting in 1 s");
                let pause = tokio::time::sleep(Duration::from_secs(1));
                tokio::select! {
                    _ = pause => {}
                    _ = shutdown.wait_for(|stop| *stop) => break,
                }
            }
        }
    }
    info!("release job worker stopped");
}

/// Removes a cleanly stopped worker's registration (apalis-redis leaves it
/// behind), so that names of past runs do not pile up in Redis; but only when
/// it holds no job.
async fn forget_worker(queue: &ReleaseQueue, name: &str) {
    let config = queue.config().clone();
    let work = async {
        let mut conn = queue.connection().await.ok()?;
        let inflight = format!("{}:{name}", config.inflight_jobs_set());
        let held: u64 = redis::cmd("SCARD")
            .arg(&inflight)
            .query_async(&mut conn)
            .await
            .ok()?;
        if held > 0 {
            // Jobs it still holds are re-enqueued through its registration
            // once it is seen as dead: keep it.
            return None;
        }
        redis::pipe()
            .cmd("ZREM")
            .arg(config.workers_set())
            .arg(name)
            .ignore()
            .cmd("DEL")
            .arg(format!("{}:workers:metadata:{name}", config.queue.as_ref()))
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .ok()
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), work).await;
}
