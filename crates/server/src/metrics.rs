//! The server's Prometheus series (README, "Metrics"): the names of
//! those only the server reports live here; those the worker reports too,
//! every histogram, and the process's one recorder live in holdfast-runtime.

use std::sync::Arc;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use holdfast_domain::{DomainError, Reserved};

// The series the worker reports too, named once for both.
pub use holdfast_runtime::metrics::{
    DB_CONNECTIONS, EVENT_PUBLISH_FAILURES_TOTAL, EVENTS_PUBLISHED_TOTAL, GRAPHQL_REQUEST_DURATION,
    RELEASE_JOBS_DUE, RELEASE_LAG_SECONDS, RELEASES_TOTAL, observe_jobs_due, observe_pool, release,
};

pub const RESERVATIONS_TOTAL: &str = "holdfast_reservations_total";
pub const DB_STATEMENTS_TOTAL: &str = "holdfast_db_statements_total";
pub const SUBSCRIBERS_CONNECTED: &str = "holdfast_subscribers_connected";
pub const WS_CONNECTIONS: &str = "holdfast_ws_connections";
pub const SUBSCRIBERS_DROPPED_TOTAL: &str = "holdfast_subscribers_dropped_total";
pub const LIVE_EVENTS_RECEIVED_TOTAL: &str = "holdfast_live_events_received_total";
pub const LIVE_DISCONNECTS_TOTAL: &str = "holdfast_live_disconnects_total";
pub const REQUEST_TIMEOUTS_TOTAL: &str = "holdfast_request_timeouts_total";

/// Installs the process's recorder (holdfast-runtime's) if no app did yet,
/// and describes the server's own series in it, once.
pub fn describe() {
    holdfast_runtime::metrics::recorder();
    static DESCRIBED: Once = Once::new();
    DESCRIBED.call_once(describe_series);
}

fn describe_series() {
    metrics::describe_counter!(
        RESERVATIONS_TOTAL,
        "reserveProperty calls by outcome: reserved, replayed, unavailable, limit, not_found, bad_input, busy, error"
    );
    metrics::describe_gauge!(SUBSCRIBERS_CONNECTED, "live subscriptions running now");
    metrics::describe_gauge!(WS_CONNECTIONS, "WebSocket connections open now");
    metrics::describe_counter!(
        SUBSCRIBERS_DROPPED_TOTAL,
        "live subscribers dropped: lagged (fell a buffer behind), stalled (read nothing for 10 s)"
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
        REQUEST_TIMEOUTS_TOTAL,
        "GraphQL requests over HTTP cut by HOLDFAST_REQUEST_TIMEOUT (answered SERVICE_UNAVAILABLE)"
    );
    // Shown at 0 from the start, so that a rate over it needs no first event.
    metrics::counter!(REQUEST_TIMEOUTS_TOTAL).increment(0);
    metrics::describe_counter!(
        DB_STATEMENTS_TOTAL,
        "SQL statements sent to PostgreSQL: shows whether a list costs one query per item"
    );
}

/// Counts a `reserveProperty` by how it ended, telling the caller's
/// mistakes and refusals (`not_found`, `bad_input`, `unavailable`, `limit`)
/// from the server's trouble (`busy`, `error`), and a retry that a key
/// answered (`replayed`) from a new hold.
pub fn reservation_outcome(result: Result<&Reserved, &DomainError>) {
    let outcome = match result {
        Ok(r) if r.replayed => "replayed",
        Ok(_) => "reserved",
        Err(DomainError::PropertyUnavailable { .. }) => "unavailable",
        Err(DomainError::ReservationLimitReached { .. }) => "limit",
        Err(DomainError::NotFound(_)) => "not_found",
        Err(DomainError::InvalidInput(_)) => "bad_input",
        Err(DomainError::Busy) => "busy",
        Err(_) => "error",
    };
    metrics::counter!(RESERVATIONS_TOTAL, "outcome" => outcome).increment(1);
}

pub fn graphql_request(elapsed: Duration) {
    metrics::histogram!(GRAPHQL_REQUEST_DURATION).record(elapsed.as_secs_f64());
}

pub fn request_timeout() {
    metrics::counter!(REQUEST_TIMEOUTS_TOTAL).increment(1);
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
