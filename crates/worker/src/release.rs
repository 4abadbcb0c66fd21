//! The hold jobs' handler: a release runs the domain's idempotent `expire`,
//! a warning its idempotent `warn`; and what each outcome means for the
//! queue (done, retry soon, retry with back-off, or give up).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::{AbortError, Attempt, BoxDynError, Data, RetryAfterError, TaskId};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use holdfast_domain::entities::ReservationStatus;
use holdfast_domain::job::{HoldJob, JobKind};
use holdfast_domain::reservations::{self, ExpireOutcome, WarnOutcome};
use holdfast_domain::{DomainError, Effects, Policy};
use holdfast_runtime::Outbox;
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use tracing::{Instrument, debug, error, info, warn};

use crate::telemetry;

/// What a hold job did; every one of these is final (no retry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The reservation was ended as EXPIRED and its property freed.
    Released {
        expires_at: DateTime<Utc>,
        ended_at: DateTime<Utc>,
        lag_seconds: f64,
    },
    /// It had ended already: released, converted, or expired by the sweep,
    /// a takeover or an earlier run of this job.
    AlreadyEnded {
        #[serde(with = "status_name")]
        status: ReservationStatus,
    },
    /// It was extended: the job of its new version will release it.
    Superseded { current_version: i32 },
    /// No such reservation in that workspace (deleted, or a bad payload).
    NotFound,
    /// Its agent was warned that the hold's end is near.
    Warned { expires_at: DateTime<Utc> },
    /// This version was warned already (the job ran twice), or warnings are
    /// off in this worker.
    NotWarned,
}

/// A reservation status as its database name (the domain's enum is not serde).
mod status_name {
    use holdfast_domain::entities::ReservationStatus;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(status: &ReservationStatus, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(status.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ReservationStatus, D::Error> {
        let name = String::deserialize(d)?;
        [
            ReservationStatus::Active,
            ReservationStatus::Released,
            ReservationStatus::Expired,
            ReservationStatus::Converted,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
        .ok_or_else(|| D::Error::custom(format!("unknown reservation status {name}")))
    }
}

/// Why a hold job did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The job ran before its time (clocks differ by a second or so): run
    /// it again shortly.
    #[error("the job is not due until {due}")]
    NotDue { due: DateTime<Utc> },
    /// The database is unreachable or busy: retry with back-off.
    #[error("transient failure, will retry: {0}")]
    Transient(#[source] DomainError),
    /// Anything else: retrying cannot help.
    #[error("permanent failure: {0}")]
    Permanent(#[source] DomainError),
}

/// Longest the database part of a hold job may take: longer than a healthy
/// one can (a wait for a connection, 5 s, then for the plot's lock, 3 s).
/// Past it the job is dropped, its transaction with it, and given back for a
/// retry: on a silent link to PostgreSQL a release is late by this bound and
/// the retry's back-off, never by as long as the link stays down.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs one hold job against the database: what the queue runs, and what
/// tests call directly, without Redis.
pub async fn handle_job(
    job: &HoldJob,
    db: &DatabaseConnection,
    policy: &Policy,
) -> Result<Outcome, ReleaseError> {
    run_job(job, db, policy).await.map(|(outcome, _)| outcome)
}

/// [`handle_job`], and what it committed, for the work after the commit.
pub async fn run_job(
    job: &HoldJob,
    db: &DatabaseConnection,
    policy: &Policy,
) -> Result<(Outcome, Effects), ReleaseError> {
    let running = async {
        match job.kind {
            JobKind::Release => release(job, db, policy).await,
            JobKind::Warn => warn_of_expiry(job, db, policy).await,
        }
    };
    let Ok(done) = tokio::time::timeout(JOB_TIMEOUT, running).await else {
        warn!(timeout = ?JOB_TIMEOUT, "no answer from PostgreSQL in time; the job will be retried");
        return Err(ReleaseError::Transient(DomainError::Unavailable(
            sea_orm::DbErr::Custom(format!("no answer within {JOB_TIMEOUT:?}")),
        )));
    };
    done
}

fn failure(e: DomainError) -> ReleaseError {
    if e.is_transient() {
        ReleaseError::Transient(e)
    } else {
        ReleaseError::Permanent(e)
    }
}

async fn release(
    job: &HoldJob,
    db: &DatabaseConnection,
    policy: &Policy,
) -> Result<(Outcome, Effects), ReleaseError> {
    let written = reservations::expire(
        db,
        policy,
        job.workspace_id,
        job.reservation_id,
        job.version,
    )
    .await;
    let effects = written.effects;
    let outcome = match written.result.map_err(failure)? {
        ExpireOutcome::Expired(hold) => {
            let r = &hold.reservation;
            // `expire` always sets ended_at; the database's now is the fallback.
            let ended_at = r.ended_at.unwrap_or_else(Utc::now);
            let lag_seconds = telemetry::lag_seconds(r.expires_at, ended_at);
            info!(
                property.id = %r.property_id,
                lag_seconds,
                "released an expired reservation"
            );
            Outcome::Released {
                expires_at: r.expires_at,
                ended_at,
                lag_seconds,
            }
        }
        ExpireOutcome::NotActive(status) => already_ended(status),
        ExpireOutcome::StaleVersion { current } => superseded(current),
        ExpireOutcome::NotFound => not_found(),
        ExpireOutcome::NotDue { expires_at } => {
            return Err(ReleaseError::NotDue { due: expires_at });
        }
    };
    Ok((outcome, effects))
}

async fn warn_of_expiry(
    job: &HoldJob,
    db: &DatabaseConnection,
    policy: &Policy,
) -> Result<(Outcome, Effects), ReleaseError> {
    let Some(warning) = policy.expiry_warning else {
        debug!("expiry warnings are off in this worker, nothing to do");
        return Ok((Outcome::NotWarned, Effects::default()));
    };
    let written = reservations::warn(
        db,
        job.workspace_id,
        job.reservation_id,
        job.version,
        warning,
    )
    .await;
    let effects = written.effects;
    let outcome = match written.result.map_err(failure)? {
        WarnOutcome::Warned(hold) => {
            info!(
                property.id = %hold.reservation.property_id,
                expires_at = %hold.reservation.expires_at,
                "warned of a hold's end"
            );
            Outcome::Warned {
                expires_at: hold.reservation.expires_at,
            }
        }
        WarnOutcome::AlreadyWarned => {
            debug!("this version was warned already, nothing to do");
            Outcome::NotWarned
        }
        WarnOutcome::NotActive(status) => already_ended(status),
        WarnOutcome::StaleVersion { current } => superseded(current),
        WarnOutcome::NotFound => not_found(),
        WarnOutcome::NotDue { at } => return Err(ReleaseError::NotDue { due: at }),
    };
    Ok((outcome, effects))
}

fn already_ended(status: ReservationStatus) -> Outcome {
    debug!(
        status = status.as_str(),
        "reservation already ended, nothing to do"
    );
    Outcome::AlreadyEnded { status }
}

fn superseded(current: i32) -> Outcome {
    debug!(
        current_version = current,
        "reservation was extended, nothing to do"
    );
    Outcome::Superseded {
        current_version: current,
    }
}

fn not_found() -> Outcome {
    info!("reservation not found, nothing to do");
    Outcome::NotFound
}

/// What every hold job shares.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub db: DatabaseConnection,
    /// Where the work each job owes after its commit goes, and the rules.
    pub outbox: Outbox,
}

/// The apalis task: [`handle_job`] in a span naming the job, with its
/// errors told apart the way apalis-redis understands them. A plain error is
/// retried (apalis-redis reschedules it `attempt` seconds later, up to 25
/// attempts, whatever `max_attempts` says); an `AbortError` is never retried.
pub async fn release_task(
    job: HoldJob,
    ctx: Data<Arc<JobContext>>,
    task_id: TaskId,
    attempt: Attempt,
) -> Result<Outcome, BoxDynError> {
    // Named for what the job does, with the same fields.
    let span = match job.kind {
        JobKind::Release => tracing::info_span!(
            "release_job",
            job.id = %task_id,
            job.attempt = attempt.current(),
            reservation.id = %job.reservation_id,
            workspace.id = %job.workspace_id,
            reservation.version = job.version,
        ),
        JobKind::Warn => tracing::info_span!(
            "warning_job",
            job.id = %task_id,
            job.attempt = attempt.current(),
            reservation.id = %job.reservation_id,
            workspace.id = %job.workspace_id,
            reservation.version = job.version,
        ),
    };
    async move {
        let in_flight = metrics::gauge!(telemetry::RELEASE_JOBS_IN_FLIGHT);
        in_flight.increment(1.0);
        // A panic must not take the worker (and every job in hand) down: the
        // job is given up on, and the sweep releases its hold.
        let result = AssertUnwindSafe(run_job(&job, &ctx.db, &ctx.outbox.policy))
            .catch_unwind()
            .await;
        in_flight.decrement(1.0);

        let Ok(result) = result else {
            metrics::counter!(telemetry::RELEASE_JOBS_TOTAL, "outcome" => "panicked").increment(1);
            error!("hold job panicked; the sweep is the safety net");
            return Err(AbortError::new("the hold job panicked").into());
        };
        let label = match &result {
            Ok((Outcome::Released { .. }, _)) => "released",
            Ok((Outcome::Warned { .. }, _)) => "warned",
            Ok(_) => "nothing_to_do",
            Err(ReleaseError::NotDue { .. }) => "not_due",
            Err(ReleaseError::Transient(_)) => "retry",
            Err(ReleaseError::Permanent(_)) => "failed",
        };
        metrics::counter!(telemetry::RELEASE_JOBS_TOTAL, "outcome" => label).increment(1);
        let result = match result {
            Ok((outcome, effects)) => {
                ctx.outbox.after_commit(&effects).await;
                Ok(outcome)
            }
            Err(e) => Err(e),
        };
        for_the_queue(result)
    }
    .instrument(span)
    .await
}

/// Tells apalis-redis what to do with the job: a plain error is retried with
/// its back-off, a `RetryAfterError` too (the job ran early), and an
/// `AbortError` goes to the dead set at once.
fn for_the_queue(result: Result<Outcome, ReleaseError>) -> Result<Outcome, BoxDynError> {
    match result {
        Ok(outcome) => Ok(outcome),
        Err(ReleaseError::NotDue { due }) => {
            let wait = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            debug!(?wait, "ran before its time, running it again shortly");
            Err(RetryAfterError::new(ReleaseError::NotDue { due }, wait).into())
        }
        Err(e @ ReleaseError::Transient(_)) => {
            warn!(error = %e, "hold job failed, will retry");
            Err(e.into())
        }
        Err(e @ ReleaseError::Permanent(_)) => {
            warn!(error = %e, "hold job failed for good; the sweep is the safety net");
            Err(AbortError::new(e).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_failures_are_aborted_and_others_retried() {
        let db_err = || sea_orm::DbErr::Custom("boom".to_owned());
        let permanent = for_the_queue(Err(ReleaseError::Permanent(
            DomainError::Internal(db_err()),
        )))
        .expect_err("error");
        assert!(
            permanent.downcast_ref::<AbortError>().is_some(),
            "not retried 25 times"
        );

        let transient =
            for_the_queue(Err(ReleaseError::Transient(DomainError::Busy))).expect_err("error");
        assert!(transient.downcast_ref::<AbortError>().is_none(), "retried");
        assert!(transient.downcast_ref::<RetryAfterError>().is_none());

        let early = for_the_queue(Err(ReleaseError::NotDue {
            due: Utc::now() + chrono::Duration::seconds(1),
        }))
        .expect_err("error");
        assert!(
            early.downcast_ref::<RetryAfterError>().is_some(),
            "retried shortly"
        );

        assert_eq!(
            for_the_queue(Ok(Outcome::NotFound)).expect("done"),
            Outcome::NotFound
        );
    }
}
