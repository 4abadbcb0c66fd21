//! Publishing the changes the server's own mutations make, after their
//! commit. Redis being down never fails the mutation: the change stands, the
//! failure is logged and counted, and live subscribers (whose feed breaks
//! with Redis anyway) re-read when they subscribe again.

use holdfast_queue::{EventPublisher, PropertyChanged};

use crate::metrics;

/// Publishes; a failure is logged and counted, never raised.
pub async fn publish(publisher: &EventPublisher, changes: &[PropertyChanged]) {
    match publisher.publish(changes).await {
        Ok(_) => metrics::events_published(changes.len()),
        Err(e) => {
            metrics::event_publish_failure(changes.len());
            tracing::warn!(
                error = %e,
                changes = changes.len(),
                "could not publish a property change; live subscribers miss it"
            );
        }
    }
}
