//! The release job's handler: the domain's idempotent `expire`, and what each
//! of its outcomes means for the queue (done, retry soon, retry with
//! back-off, or give up).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::{AbortError, Attempt, BoxDynError, Data, RetryAfterError, TaskId};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use holdfast_domain::DomainError;
use holdfast_domain::Effects;
use holdfast_domain::entities::ReservationStatus;
use holdfast_domain::job::ReleaseReservation;
use holdfast_domain::reservations::{self, ExpireOutcome};
use holdfast_queue::{EventPublisher, PropertyChanged};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use tracing::{Instrument, debug, error, info, warn};

use crate::telemetry;

/// What a release job did; every one of these is final (no retry).
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

/// Why a release job did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The job ran before `expires_at` (clocks differ by a second or so):
    /// run it again shortly.
    #[error("the reservation is not due until {expires_at}")]
    NotDue { expires_at: DateTime<Utc> },
    /// The database is unreachable or busy: retry with back-off.
    #[error("transient failure, will retry: {0}")]
    Transient(#[source] DomainError),
    /// Anything else: retrying cannot help.
    #[error("permanent failure: {0}")]
    Permanent(#[source] DomainError),
}

/// Longest the database part of a release job may take: longer than a
/// healthy one can (a wait for a connection, 5 s, then for the plot's lock,
/// 3 s). Past it the job is dropped, its transaction with it, and given back
/// for a retry: on a silent link to PostgreSQL a release is late by this
/// bound and the retry's back-off, never by as long as the link stays down.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs one release job against the database. Tests call this directly,
/// without Redis; the queue calls it through [`release_task`].
pub async fn handle_release(
    job: &ReleaseReservation,
    db: &DatabaseConnection,
) -> Result<Outcome, ReleaseError> {
    expire_job(job, db).await.map(|(outcome, _)| outcome)
}

/// [`handle_release`], and what it committed, for the live subscribers.
pub async fn expire_job(
    job: &ReleaseReservation,
    db: &DatabaseConnection,
) -> Result<(Outcome, Effects), ReleaseError> {
    let expiring = reservations::expire(db, job.workspace_id, job.reservation_id, job.version);
    let Ok(written) = tokio::time::timeout(JOB_TIMEOUT, expiring).await else {
        warn!(timeout = ?JOB_TIMEOUT, "no answer from PostgreSQL in time; the job will be retried");
        return Err(ReleaseError::Transient(DomainError::Unavailable(
            sea_orm::DbErr::Custom(format!("no answer within {JOB_TIMEOUT:?}")),
        )));
    };
    let effects = written.effects;
    let outcome = written.result.map_err(|e| {
        if e.is_transient() {
            ReleaseError::Transient(e)
        } else {
            ReleaseError::Permanent(e)
        }
    })?;
    match outcome {
        ExpireOutcome::Expired(hold) => {
            let r = &hold.reservation;
            // `expire` always sets ended_at; the database's now is the fallback.
            let ended_at = r.ended_at.unwrap_or_else(Utc::now);
            telemetry::hold_ended(r);
            let lag_seconds = telemetry::lag_seconds(r.expires_at, ended_at);
            info!(
                property.id = %r.property_id,
                lag_seconds,
                "released an expired reservation"
            );
            Ok((
                Outcome::Released {
                    expires_at: r.expires_at,
                    ended_at,
                    lag_seconds,
                },
                effects,
            ))
        }
        ExpireOutcome::NotActive(status) => {
            debug!(
                status = status.as_str(),
                "reservation already ended, nothing to do"
            );
            Ok((Outcome::AlreadyEnded { status }, effects))
        }
        ExpireOutcome::StaleVersion { current } => {
            debug!(
                current_version = current,
                "reservation was extended, nothing to do"
            );
            Ok((
                Outcome::Superseded {
                    current_version: current,
                },
                effects,
            ))
        }
        ExpireOutcome::NotFound => {
            info!("reservation not found, nothing to do");
            Ok((Outcome::NotFound, effects))
        }
        ExpireOutcome::NotDue { expires_at } => Err(ReleaseError::NotDue { expires_at }),
    }
}

/// What every release job shares.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub db: DatabaseConnection,
    /// Where released holds are announced to live subscribers.
    pub events: EventPublisher,
}

/// The apalis task: [`handle_release`] in a span naming the job, with its
/// errors told apart the way apalis-redis understands them. A plain error is
/// retried (apalis-redis reschedules it `attempt` seconds later, up to 25
/// attempts, whatever `max_attempts` says); an `AbortError` is never retried.
pub async fn release_task(
    job: ReleaseReservation,
    ctx: Data<Arc<JobContext>>,
    task_id: TaskId,
    attempt: Attempt,
) -> Result<Outcome, BoxDynError> {
    let span = tracing::info_span!(
        "release_job",
        job.id = %task_id,
        job.attempt = attempt.current(),
        reservation.id = %job.reservation_id,
        workspace.id = %job.workspace_id,
        reservation.version = job.version,
    );
    async move {
        let in_flight = metrics::gauge!(telemetry::RELEASE_JOBS_IN_FLIGHT);
        in_flight.increment(1.0);
        // A panic must not take the worker (and every job in hand) down: the
        // job is given up on, and the sweep releases its hold.
        let result = AssertUnwindSafe(expire_job(&job, &ctx.db))
            .catch_unwind()
            .await;
        in_flight.decrement(1.0);

        let Ok(result) = result else {
            metrics::counter!(telemetry::RELEASE_JOBS_TOTAL, "outcome" => "panicked").increment(1);
            error!("release job panicked; the sweep is the safety net");
            return Err(AbortError::new("the release job panicked").into());
        };
        let label = match &result {
            Ok((Outcome::Released { .. }, _)) => "released",
            Ok(_) => "nothing_to_do",
            Err(ReleaseError::NotDue { .. }) => "not_due",
            Err(ReleaseError::Transient(_)) => "retry",
            Err(ReleaseError::Permanent(_)) => "failed",
        };
        metrics::counter!(telemetry::RELEASE_JOBS_TOTAL, "outcome" => label).increment(1);
        let result = match result {
            Ok((outcome, effects)) => {
                telemetry::publish(&ctx.events, &PropertyChanged::of_effects(&effects)).await;
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
        Err(ReleaseError::NotDue { expires_at }) => {
            let wait = (expires_at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            debug!(?wait, "ran before its time, running it again shortly");
            Err(RetryAfterError::new(ReleaseError::NotDue { expires_at }, wait).into())
        }
        Err(e @ ReleaseError::Transient(_)) => {
            warn!(error = %e, "release job failed, will retry");
            Err(e.into())
        }
        Err(e @ ReleaseError::Permanent(_)) => {
            warn!(error = %e, "release job failed for good; the sweep is the safety net");
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
            expires_at: Utc::now() + chrono::Duration::seconds(1),
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
