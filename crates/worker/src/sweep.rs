//! The release sweep (story 2.4's safety net): on every tick of
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
use holdfast_domain::{DomainError, DomainResult, Effects};
use holdfast_queue::{EventPublisher, PropertyChanged, QueueError, ReleaseQueue, sweep_lock_key};
use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::watch;
use tracing::{Instrument, debug, info, warn};

use crate::telemetry;

/// Ends every lapsed reservation, `batch_size` per transaction, and logs what
/// it did: one line per batch, and one for the whole sweep (AC-2.4.1).
pub async fn sweep_once(db: &DatabaseConnection, batch_size: u32) -> DomainResult<SweepReport> {
    sweep_and_publish(db, batch_size, None).await
}

/// [`sweep_once`], announcing each batch's released holds to live
/// subscribers once the batch has committed.
pub async fn sweep_and_publish(
    db: &DatabaseConnection,
    batch_size: u32,
    events: Option<&EventPublisher>,
) -> DomainResult<SweepReport> {
    let started = Instant::now();
    let mut batch = 0u32;
    let mut publishing = Vec::new();
    let result = sweep_in_bounded_batches(db, batch_size, |swept| {
        batch += 1;
        if let Some(events) = events {
            // The callback cannot wait: publish beside the next batch.
            let changes = PropertyChanged::of_effects(swept);
            let events = events.clone();
            publishing.push(tokio::spawn(async move {
                telemetry::publish(&events, &changes).await;
            }));
        }
        let mut max_lag = 0.0_f64;
        for hold in &swept.ended {
            let r = &hold.reservation;
            telemetry::hold_ended(r);
            let ended_at = r.ended_at.unwrap_or(r.expires_at);
            max_lag = max_lag.max(telemetry::lag_seconds(r.expires_at, ended_at));
        }
        info!(
            batch,
            released = swept.ended.len(),
            max_lag_seconds = max_lag,
            "sweep released a batch of expired reservations"
        );
    })
    .await;
    for published in publishing {
        let _ = published.await;
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

/// Longest one batch of the sweep (one transaction, one statement) may take:
/// longer than a healthy one can (the pool's statement_timeout, 30 s, and a
/// wait for a connection, 5 s). Past it the batch is dropped, rolled back,
/// and the tick fails; the next tries again. So a silent link to PostgreSQL
/// costs a tick this bound at most; the batches already done stay done.
pub const BATCH_TIMEOUT: Duration = Duration::from_secs(40);

/// `reservations::sweep`, with each batch bounded by [`BATCH_TIMEOUT`].
async fn sweep_in_bounded_batches(
    db: &DatabaseConnection,
    batch_size: u32,
    mut on_batch: impl FnMut(&Effects),
) -> DomainResult<SweepReport> {
    let mut report = SweepReport::default();
    loop {
        let batch = tokio::time::timeout(BATCH_TIMEOUT, reservations::sweep_batch(db, batch_size));
        let swept = batch.await.map_err(|_| {
            DomainError::Unavailable(DbErr::Custom(format!(
                "no answer from PostgreSQL within {BATCH_TIMEOUT:?}"
            )))
        })??;
        let ended = swept.ended.len();
        if ended > 0 {
            report.batches += 1;
            report.released += ended as u64;
            on_batch(&swept);
        }
        if ended < batch_size as usize {
            return Ok(report);
        }
    }
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
            let events = EventPublisher::new(self.queue.clone());
            match sweep_and_publish(&self.db, self.batch_size, Some(&events)).await {
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
