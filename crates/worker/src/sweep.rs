//! The release sweep, the safety net behind the release jobs: on every tick of
//! `HOLDFAST_SWEEP_SCHEDULE` it ends every lapsed reservation in batches, so
//! no property stays blocked when a release job was lost or Redis was down.
//!
//! Every replica's scheduler fires every tick. A tick's work is done ONCE:
//! the replica that wins `SET <queue>:sweep-lock NX PX` sweeps, the others
//! log that they skipped. The lock only saves the database the duplicate
//! scans; correctness never depends on it: the sweep locks property rows with
//! `FOR UPDATE SKIP LOCKED`, so two sweeps (or a sweep and a job) never block
//! each other or end a reservation twice. That is why a replica that cannot
//! reach Redis sweeps anyway: with Redis down the sweep is the only way holds
//! get released, and a duplicate sweep is harmless.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use holdfast_domain::reservations::{self, SweepReport};
use holdfast_domain::{DomainResult, Policy};
use holdfast_queue::{QueueError, ReleaseQueue, sweep_lock_key};
use holdfast_runtime::Outbox;
use sea_orm::DatabaseConnection;
use tokio::sync::watch;
use tracing::{Instrument, debug, info, warn};

use crate::telemetry;

/// Ends every lapsed reservation, `batch_size` per transaction, and logs what
/// it did: one line per batch, and one for the whole sweep (AC-2.4.1).
pub async fn sweep_once(
    db: &DatabaseConnection,
    policy: &Policy,
    batch_size: u32,
) -> DomainResult<SweepReport> {
    sweep_and_publish(db, policy, batch_size, None).await
}

/// [`sweep_once`], doing the work each batch owes after its commit
/// (events, the jobs of holds it began) through `outbox`.
pub async fn sweep_and_publish(
    db: &DatabaseConnection,
    policy: &Policy,
    batch_size: u32,
    outbox: Option<&Outbox>,
) -> DomainResult<SweepReport> {
    let started = Instant::now();
    let mut batch = 0u32;
    let mut owed = Vec::new();
    let result = reservations::sweep(db, policy, batch_size, |swept| {
        batch += 1;
        match outbox {
            // The callback cannot wait: the work runs beside the next batch.
            Some(outbox) => {
                let (outbox, swept) = (outbox.clone(), swept.clone());
                owed.push(tokio::spawn(async move {
                    outbox.after_commit(&swept).await;
                }));
            }
            None => swept
                .ended
                .iter()
                .for_each(|hold| telemetry::hold_ended(&hold.reservation)),
        }
        let max_lag = swept
            .ended
            .iter()
            .map(|hold| {
                let r = &hold.reservation;
                telemetry::lag_seconds(r.expires_at, r.ended_at.unwrap_or(r.expires_at))
            })
            .fold(0.0, f64::max);
        info!(
            batch,
            released = swept.ended.len(),
            max_lag_seconds = max_lag,
            "sweep released a batch of expired reservations"
        );
    })
    .await;
    for work in owed {
        let _ = work.await;
    }
    let elapsed = started.elapsed();
    metrics::histogram!(telemetry::SWEEP_DURATION_SECONDS).record(elapsed.as_secs_f64());
    match &result {
        Ok(report) => {
            metrics::counter!(telemetry::SWEEPS_TOTAL, "outcome" => "swept").increment(1);
            info!(
                released = report.released,
                batches = report.batches,
                elapsed_ms = elapsed.as_millis() as u64,
                "sweep done"
            );
        }
        Err(e) => {
            metrics::counter!(telemetry::SWEEPS_TOTAL, "outcome" => "failed").increment(1);
            warn!(error = %e, elapsed_ms = elapsed.as_millis() as u64, "sweep failed; the next tick tries again");
        }
    }
    result
}

/// What one tick did in this replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickOutcome {
    /// This replica swept.
    Swept(SweepReport),
    /// Another replica holds this tick.
    Skipped { holder: Option<String> },
    /// The sweep failed (logged); the next tick tries again.
    Failed,
}

/// Everything a tick needs.
#[derive(Debug, Clone)]
pub struct Sweeper {
    pub db: DatabaseConnection,
    pub queue: ReleaseQueue,
    /// Where the work each batch owes goes.
    pub outbox: Outbox,
    pub batch_size: u32,
    /// Names this replica in the lock, for the logs of the others.
    pub replica: String,
}

impl Sweeper {
    /// Runs the tick due at `tick`, if no other replica claimed it; `hold`
    /// is how long the claim lasts (less than the time to the next tick).
    pub async fn tick(&self, tick: DateTime<Utc>, hold: Duration) -> TickOutcome {
        let span = tracing::info_span!("sweep", sweep.tick = %tick.to_rfc3339());
        async move {
            match self.claim(tick, hold).await {
                Ok(Claim::Won) => {}
                Ok(Claim::HeldBy(holder)) => {
                    metrics::counter!(telemetry::SWEEPS_TOTAL, "outcome" => "skipped").increment(1);
                    info!(holder = holder.as_deref().unwrap_or("?"), "another replica sweeps this tick");
                    return TickOutcome::Skipped { holder };
                }
                Err(e) => {
                    warn!(error = %e, "cannot reach Redis for the sweep lock; sweeping anyway (SKIP LOCKED makes a duplicate harmless)");
                }
            }
            let policy = &self.outbox.policy;
            match sweep_and_publish(&self.db, policy, self.batch_size, Some(&self.outbox)).await {
                Ok(report) => TickOutcome::Swept(report),
                Err(_) => TickOutcome::Failed,
            }
        }
        .instrument(span)
        .await
    }

    async fn claim(&self, tick: DateTime<Utc>, hold: Duration) -> Result<Claim, QueueError> {
        let key = sweep_lock_key(self.queue.queue_name());
        let value = format!("{}@{}", self.replica, tick.timestamp());
        let bound = Duration::from_secs(1);
        let work = async {
            let mut conn = self.queue.connection().await?;
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&value)
                .arg("NX")
                .arg("PX")
                .arg(hold.as_millis().max(1) as u64)
                .query_async(&mut conn)
                .await?;
            if set.is_some() {
                return Ok(Claim::Won);
            }
            let holder: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut conn).await?;
            Ok(Claim::HeldBy(holder))
        };
        tokio::time::timeout(bound, work)
            .await
            .map_err(|_| QueueError::Timeout(bound))?
    }
}

enum Claim {
    Won,
    HeldBy(Option<String>),
}

/// How long a tick's claim lasts: half the time to the next tick, so that
/// replicas whose clocks differ a little still see the same claim, and the
/// next tick is free again.
pub fn claim_duration(schedule: &cron::Schedule, tick: DateTime<Utc>) -> Duration {
    let gap = schedule
        .after(&tick)
        .next()
        .and_then(|next| (next - tick).to_std().ok())
        .unwrap_or(Duration::from_secs(60));
    (gap / 2).clamp(Duration::from_millis(500), Duration::from_secs(600))
}

/// Fires the sweep on every tick of `schedule` (apalis-cron) until `shutdown`
/// turns true; a sweep in progress then finishes first.
pub async fn run_sweeps(
    sweeper: Sweeper,
    schedule: cron::Schedule,
    mut shutdown: watch::Receiver<bool>,
) {
    info!("sweep scheduled on `{}`", schedule);
    let scheduler = || Box::pin(apalis_cron::CronScheduler::new(schedule.clone()).into_stream());
    let mut ticks = scheduler();
    loop {
        let next = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            next = ticks.next() => next,
        };
        match next {
            Some(Ok(tick)) => {
                let Some(at) = i64::try_from(tick.get_timestamp())
                    .ok()
                    .and_then(|secs| DateTime::from_timestamp(secs, 0))
                else {
                    continue;
                };
                sweeper.tick(at, claim_duration(&schedule, at)).await;
            }
            Some(Err(e)) => {
                // The scheduler refuses a tick already in the past (a sweep
                // overran the period): start again from now.
                debug!(error = %e, "sweep tick missed, rescheduling");
                ticks = scheduler();
            }
            None => break,
        }
    }
    info!("sweep stopped");
}
