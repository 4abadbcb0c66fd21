//! The work owed once a write has committed: a release job in Redis for each
//! hold that began or was extended, the property changes published for live
//! subscribers, and the ends counted. Redis being down never fails the
//! write: the sweep releases a hold whose job was lost, so a failure is
//! logged and counted, not raised.

use holdfast_domain::Effects;
use holdfast_domain::entities::reservation;
use holdfast_domain::job::ReleaseReservation;
use holdfast_queue::{EventPublisher, PropertyChanged, ReleaseQueue};

use crate::live::publish::publish;
use crate::metrics;

/// Does the work `effects` owe; the Redis calls run side by side, so with
/// Redis away the request waits for one bound, not several.
pub async fn after_commit(queue: &ReleaseQueue, events: &EventPublisher, effects: &Effects) {
    if effects.is_empty() {
        return;
    }
    for hold in &effects.ended {
        holdfast_runtime::metrics::hold_ended(&hold.reservation);
    }
    let changes = PropertyChanged::of_effects(effects);
    let jobs = effects
        .started
        .iter()
        .chain(&effects.extended)
        .map(|hold| schedule_release(queue, &hold.reservation));
    tokio::join!(futures::future::join_all(jobs), publish(events, &changes));
}

/// Schedules the release of `reservation` (at its current version) at its
/// `expires_at`.
pub async fn schedule_release(queue: &ReleaseQueue, reservation: &reservation::Model) {
    let job = ReleaseReservation {
        workspace_id: reservation.workspace_id,
        reservation_id: reservation.id,
        version: reservation.version,
    };
    if let Err(err) = queue.schedule(&job, reservation.expires_at).await {
        tracing::warn!(
            reservation.id = %reservation.id,
            reservation.version = reservation.version,
            error = %err,
            "could not schedule the release job; the sweep will release this hold"
        );
        metrics::enqueue_failure();
    }
}
