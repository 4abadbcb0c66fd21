//! Publishing the changes the server's own mutations make, after their
//! commit (holdfast-runtime's `publish`: a failure is counted and logged,
//! never raised, so the mutation stands).

use holdfast_queue::{EventPublisher, PropertyChanged};

/// Publishes; a failure is logged and counted, never raised.
pub async fn publish(publisher: &EventPublisher, changes: &[PropertyChanged]) {
    holdfast_runtime::metrics::publish(
        publisher,
        changes,
        "could not publish a property change; live subscribers miss it",
    )
    .await;
}
