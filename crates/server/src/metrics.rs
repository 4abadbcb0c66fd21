//! The server's Prometheus series (CONTRACT.md, "Metrics"): their names live
//! here (those the worker reports too, in holdfast-telemetry), and so does
//! the one process-wide recorder.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use holdfast_domain::DomainError;
use holdfast_domain::entities::{ReservationStatus, reservation};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

// The series the worker reports too, named once for both.
pub use holdfast_telemetry::{
    DB_CONNECTIONS, EVENT_PUBLISH_FAILURES_TOTAL, EVENTS_PUBLISHED_TOTAL, RELEASE_JOBS_DUE,
    RELEASE_LAG_SECONDS, RELEASES_TOTAL, observe_jobs_due, observe_pool,
};

pub const RESERVATIONS_TOTAL: &str = "holdfast_reservations_total";
pub const GRAPHQL_REQUEST_DURATION: &str = "holdfast_graphql_request_duration_seconds";
pub const ENQUEUE_FAILURES_TOTAL: &str = "holdfast_release_jobs_enqueue_failures_total";
pub const DB_STATEMENTS_TOTAL: &str = "holdfast_db_statements_total";
pub const SUBSCRIBERS_CONNECTED: &str = "holdfast_subscribers_connected";
pub const WS_CONNECTIONS: &str = "holdfast_ws_connections";
pub const SUBSCRIBERS_DROPPED_TOTAL: &str = "holdfast_subscribers_dropped_total";
pub const LIVE_EVENTS_RECEIVED_TOTAL: &str = "holdfast_live_events_received_total";
pub const LIVE_DISCONNECTS_TOTAL: &str = "holdfast_live_disconnects_total";

/// The recorder is global to the process (the `metrics` facade has one), so
/// every app built in one process (tests build many) shares it.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(GRAPHQL_REQUEST_DURATION.to_owned()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0,
                    ],
                )
                .and_then(|b| {
                    // The worker's buckets, so both series aggregate.
                    b.set_buckets_for_metric(
                        Matcher::Full(RELEASE_LAG_SECONDS.to_owned()),
                        &[
                            0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
                            1800.0,
                        ],
                    )
                })
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only when another recorder was installed first; the
            // handle then renders nothing, which beats refusing to start.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(
        RESERVATIONS_TOTAL,
        "reserveProperty calls by outcome: reserved, unavailable, limit, busy, error"
    );
    metrics::describe_counter!(
        RELEASES_TOTAL,
        "reservations ended before or at their time, by source"
    );
    metrics::describe_histogram!(
        RELEASE_LAG_SECONDS,
        metrics::Unit::Seconds,
        "time from a hold's expiresAt to its release"
    );
    metrics::describe_histogram!(
        GRAPHQL_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "time to answer one GraphQL request"
    );
    metrics::describe_counter!(
        ENQUEUE_FAILURES_TOTAL,
        "release jobs that could not be scheduled in Redis (the sweep releases those holds)"
    );
    metrics::describe_gauge!(
        DB_CONNECTIONS,
        "PostgreSQL pool connections by state: in_use, idle, max"
    );
    metrics::describe_gauge!(
        RELEASE_JOBS_DUE,
        "release jobs whose time has come and that no worker has taken yet (read at scrape time)"
    );
    metrics::describe_gauge!(SUBSCRIBERS_CONNECTED, "live subscriptions running now");
    metrics::describe_gauge!(WS_CONNECTIONS, "WebSocket connections open now");
    metrics::describe_counter!(
        SUBSCRIBERS_DROPPED_TOTAL,
        "live subscribers dropped: lagged (fell a buffer behind), stalled (read nothing for 10 s)"
    );
    metrics::describe_counter!(
        EVENTS_PUBLISHED_TOTAL,
        "property changes published to Redis for live subscribers"
    );
    metrics::describe_counter!(
        EVENT_PUBLISH_FAILURES_TOTAL,
        "property changes that could not be published (Redis down); the change itself stands"
    );
    metrics::describe_counter!(
        LIVE_EVENTS_RECEIVED_TOTAL,
        "property changes this server received from Redis for its subscribers"
    );
    metrics::describe_counter!(
        LIVE_DISCONNECTS_TOTAL,
        "times the Redis subscription for live updates was lost"
    );
    metrics::describe_counter!(
        DB_STATEMENTS_TOTAL,
        "SQL statements sent to PostgreSQL: shows whether a list costs one query per item"
    );
}

/// Counts a `reserveProperty` by how it ended.
pub fn reservation_outcome(result: Result<(), &DomainError>) {
    let outcome = match result {
        Ok(()) => "reserved",
        Err(DomainError::PropertyUnavailable { .. }) => "unavailable",
        Err(DomainError::ReservationLimitReached { .. }) => "limit",
        Err(DomainError::Busy) => "busy",
        Err(_) => "error",
    };
    metrics::counter!(RESERVATIONS_TOTAL, "outcome" => outcome).increment(1);
}

/// Counts a hold that ended: a release or an expiry, by what ended it, with
/// how long after its `expires_at` an expired one was ended (both times are
/// the database's clock). A conversion is a sale, not a release.
pub fn hold_ended(r: &reservation::Model) {
    let (Some(source), Some(ended_at)) = (r.end_source, r.ended_at) else {
        return;
    };
    match r.status {
        ReservationStatus::Released => {}
        ReservationStatus::Expired => {
            let lag = (ended_at - r.expires_at).to_std().unwrap_or(Duration::ZERO);
            metrics::histogram!(RELEASE_LAG_SECONDS, "source" => source.as_str())
                .record(lag.as_secs_f64());
        }
        _ => return,
    }
    metrics::counter!(RELEASES_TOTAL, "source" => source.as_str()).increment(1);
}

pub fn graphql_request(elapsed: Duration) {
    metrics::histogram!(GRAPHQL_REQUEST_DURATION).record(elapsed.as_secs_f64());
}

pub fn enqueue_failure() {
    metrics::counter!(ENQUEUE_FAILURES_TOTAL).increment(1);
}

/// Counts every statement the pool runs, in the process-wide series and in
/// a counter of this pool's own (which tests read, undisturbed by other apps
/// in the same process).
pub fn count_statements(db: &mut sea_orm::DatabaseConnection) -> Arc<AtomicU64> {
    let own = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&own);
    db.set_metric_callback(move |info| {
        counter.fetch_add(1, Ordering::Relaxed);
        let failed = if info.failed { "true" } else { "false" };
        metrics::counter!(DB_STATEMENTS_TOTAL, "failed" => failed).increment(1);
    });
    own
}

pub fn subscriber_dropped(reason: &'static str) {
    metrics::counter!(SUBSCRIBERS_DROPPED_TOTAL, "reason" => reason).increment(1);
}

pub fn live_events_received(n: usize) {
    metrics::counter!(LIVE_EVENTS_RECEIVED_TOTAL).increment(n as u64);
}

pub fn live_disconnect() {
    metrics::counter!(LIVE_DISCONNECTS_TOTAL).increment(1);
}

/// Counted in the subscribers gauge while alive.
pub struct Subscriber(());

impl Subscriber {
    pub fn open() -> Self {
        metrics::gauge!(SUBSCRIBERS_CONNECTED).increment(1.0);
        Self(())
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        metrics::gauge!(SUBSCRIBERS_CONNECTED).decrement(1.0);
    }
}

/// Counted in the WebSocket connections gauge while alive.
pub struct WsConnection(());

impl WsConnection {
    pub fn open() -> Self {
        metrics::gauge!(WS_CONNECTIONS).increment(1.0);
        Self(())
    }
}

impl Drop for WsConnection {
    fn drop(&mut self) {
        metrics::gauge!(WS_CONNECTIONS).decrement(1.0);
    }
}
