//! Scheduling a reservation's release job in Redis once its transaction has
//! committed. Redis being down never fails the reservation: the sweep
//! releases the hold instead, so a failure is logged and counted, not raised.

use holdfast_domain::entities::reservation;
use holdfast_domain::job::ReleaseReservation;
use holdfast_queue::ReleaseQueue;

use crate::metrics;

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
