//! holdfast-worker: releases lapsed holds. It consumes the delayed release
//! jobs the server schedules in Redis, runs the periodic release sweep, and
//! serves holdfast-runtime's `/metrics`, `/healthz` and `/readyz` (as the
//! server does). `main.rs` is a thin shell over [`App`], so tests start the
//! same worker the binary starts.

pub mod config;
pub mod housekeeping;
pub mod jobs;
pub mod release;
pub mod sweep;
pub mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use holdfast_domain::db::{self, PoolSettings};
use holdfast_queue::ReleaseQueue;
use holdfast_runtime::Outbox;
use holdfast_runtime::probes::{self, Probes};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{error, info, warn};

pub use config::{Config, SweepSchedule};
pub use release::{Outcome, ReleaseError, handle_job};

/// A worker, built and bound, not yet running.
pub struct App {
    config: Config,
    db: DatabaseConnection,
    queue: ReleaseQueue,
    listener: TcpListener,
    addr: SocketAddr,
    replica: String,
}

impl App {
    /// Opens the (lazy) database pool and Redis handle and binds the metrics
    /// address. Neither PostgreSQL nor Redis need be up: the worker starts,
    /// reports not ready, and gets going when they answer.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let settings = PoolSettings {
            // Every job in hand holds a connection; the sweep and probes one more each.
            max_connections: config.worker_concurrency + 4,
            application_name: "holdfast-worker".to_owned(),
            ..PoolSettings::default()
        };
        let deployment = &config.deployment;
        let db = db::connect(&deployment.database_url, &settings)
            .await
            .context("DATABASE_URL")?;
        let queue =
            ReleaseQueue::new(&deployment.redis_url, &deployment.queue).context("REDIS_URL")?;
        let listener = TcpListener::bind(config.metrics_listen)
            .await
            .with_context(|| {
                format!(
                    "HOLDFAST_METRICS_LISTEN: cannot bind {}",
                    config.metrics_listen
                )
            })?;
        let addr = listener.local_addr()?;
        Ok(App {
            config,
            db,
            queue,
            listener,
            addr,
            replica: replica_name(),
        })
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs until `shutdown` completes; then stops taking jobs, lets the jobs
    /// and the sweep in hand finish within `HOLDFAST_SHUTDOWN_TIMEOUT`, and
    /// returns.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let App {
            config,
            db,
            queue,
            listener,
            addr,
            replica,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let outbox = Outbox::new(queue.clone(), config.rules.policy());
        info!(
            %addr,
            replica = %replica,
            queue = %config.deployment.queue,
            env = ?config.deployment.environment,
            concurrency = config.worker_concurrency,
            "holdfast-worker listening (metrics, healthz, readyz)"
        );

        telemetry::describe();
        let router = probes::routes(Probes {
            db: db.clone(),
            queue: queue.clone(),
        });
        let mut http_stop = stop_rx.clone();
        let http = tokio::spawn(
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = http_stop.wait_for(|stop| *stop).await;
                })
                .into_future(),
        );

        let jobs = tokio::spawn(jobs::run_jobs(
            queue.clone(),
            Arc::new(release::JobContext {
                db: db.clone(),
                outbox: outbox.clone(),
            }),
            config.worker_concurrency as usize,
            replica.clone(),
            stop_rx.clone(),
        ));
        let housekeeping = tokio::spawn(housekeeping::run_housekeeping(
            queue.clone(),
            stop_rx.clone(),
        ));
        let sweeps = match &config.sweep_schedule {
            SweepSchedule::Cron(schedule) => Some(tokio::spawn(sweep::run_sweeps(
                sweep::Sweeper {
                    db: db.clone(),
                    queue: queue.clone(),
                    outbox: outbox.clone(),
                    batch_size: config.sweep_batch_size,
                    replica: replica.clone(),
                },
                (**schedule).clone(),
                stop_rx.clone(),
            ))),
            SweepSchedule::Off => {
                warn!(
                    "HOLDFAST_SWEEP_SCHEDULE=off: no sweep in this worker; lost jobs are not caught up"
                );
                None
            }
        };

        // The job loop only ends when told to; if it ends (a panic) the
        // worker is useless, so stop, exit non-zero, and let the supervisor
        // restart the process.
        let mut jobs = jobs;
        let crashed = tokio::select! {
            _ = shutdown => None,
            ended = &mut jobs => Some(ended),
        };
        let _ = stop_tx.send(true);
        if let Some(ended) = crashed {
            error!(?ended, "the release job worker stopped unexpectedly");
            if let Some(sweeps) = sweeps {
                sweeps.abort();
            }
            housekeeping.abort();
            anyhow::bail!("the release job worker stopped unexpectedly");
        }
        let timeout: std::time::Duration = config.shutdown_timeout.into();
        info!(
            ?timeout,
            "shutting down: taking no new jobs, finishing those in hand"
        );

        let aborts: Vec<_> = std::iter::once(jobs.abort_handle())
            .chain(sweeps.as_ref().map(|s| s.abort_handle()))
            .collect();
        let drain = async {
            let _ = jobs.await;
            if let Some(sweeps) = sweeps {
                let _ = sweeps.await;
            }
        };
        if tokio::time::timeout(timeout, drain).await.is_err() {
            // The jobs still running go back to the queue when this worker's
            // silence marks it dead; the sweep catches anything else.
            warn!("jobs still running after the shutdown timeout were abandoned");
            for abort in aborts {
                abort.abort();
            }
        }
        housekeeping.abort();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), http).await;
        db.close().await.ok();
        info!("holdfast-worker stopped");
        Ok(())
    }
}

/// A name for this process among the replicas: host, pid and a random tag.
fn replica_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    let tag = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &tag[..8])
}
