//! The Prometheus series that both binaries report (CONTRACT.md, "Metrics"):
//! their names, the gauges read at scrape time, and the publishing of
//! property changes that counts its outcome. Each binary keeps its own
//! series and its recorder; what both report is named here once, so a
//! dashboard reads the same name from either.

use holdfast_queue::{EventPublisher, PropertyChanged};

pub const RELEASES_TOTAL: &str = "holdfast_releases_total";
pub const RELEASE_LAG_SECONDS: &str = "holdfast_release_lag_seconds";
pub const DB_CONNECTIONS: &str = "holdfast_db_connections";
pub const RELEASE_JOBS_DUE: &str = "holdfast_release_jobs_due";
pub const EVENTS_PUBLISHED_TOTAL: &str = "holdfast_events_published_total";
pub const EVENT_PUBLISH_FAILURES_TOTAL: &str = "holdfast_event_publish_failures_total";

/// Sets the pool gauges from the pool as it is now (at scrape time).
pub fn observe_pool(db: &sea_orm::DatabaseConnection) {
    let pool = db.get_postgres_connection_pool();
    let size = f64::from(pool.size());
    let idle = pool.num_idle() as f64;
    let max = f64::from(pool.options().get_max_connections());
    metrics::gauge!(DB_CONNECTIONS, "state" => "in_use").set((size - idle).max(0.0));
    metrics::gauge!(DB_CONNECTIONS, "state" => "idle").set(idle);
    metrics::gauge!(DB_CONNECTIONS, "state" => "max").set(max);
}

/// Sets the due-jobs gauge (at scrape time; left as it was when Redis does
/// not answer).
pub fn observe_jobs_due(due: u64) {
    metrics::gauge!(RELEASE_JOBS_DUE).set(due as f64);
}

/// Publishes committed property changes for live subscribers. Redis being
/// down never fails the change: it stands, and the failure is counted and
/// logged with `on_failure`, never retried (live subscribers, whose feed
/// breaks with Redis anyway, re-read when they subscribe again).
pub async fn publish(events: &EventPublisher, changes: &[PropertyChanged], on_failure: &str) {
    let n = changes.len() as u64;
    match events.publish(changes).await {
        Ok(_) => metrics::counter!(EVENTS_PUBLISHED_TOTAL).increment(n),
        Err(e) => {
            metrics::counter!(EVENT_PUBLISH_FAILURES_TOTAL).increment(n);
            tracing::warn!(error = %e, changes = n, "{on_failure}");
        }
    }
}
