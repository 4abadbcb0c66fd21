//! The process's Prometheus recorder, and the series both binaries report
//! (README, "Metrics"): their names, the gauges read at scrape time,
//! releases with their lag, and the publishing of property changes that
//! counts its outcome. A series only one binary reports is named in that
//! binary; every histogram is named here, because the one recorder of a
//! process (tests run a server and a worker in one) must know every
//! histogram's buckets before the first is recorded.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use holdfast_domain::Effects;
use holdfast_domain::entities::{EndSource, QueueEntryStatus, ReservationStatus, reservation};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const RELEASES_TOTAL: &str = "holdfast_releases_total";
pub const RELEASE_LAG_SECONDS: &str = "holdfast_release_lag_seconds";
pub const DB_CONNECTIONS: &str = "holdfast_db_connections";
pub const RELEASE_JOBS_DUE: &str = "holdfast_release_jobs_due";
pub const EVENTS_PUBLISHED_TOTAL: &str = "holdfast_events_published_total";
pub const EVENT_PUBLISH_FAILURES_TOTAL: &str = "holdfast_event_publish_failures_total";
/// The server's time to answer one GraphQL request over HTTP.
pub const GRAPHQL_REQUEST_DURATION: &str = "holdfast_graphql_request_duration_seconds";
/// The worker's time for one sweep.
pub const SWEEP_DURATION_SECONDS: &str = "holdfast_sweep_duration_seconds";
pub const ENQUEUE_FAILURES_TOTAL: &str = "holdfast_release_jobs_enqueue_failures_total";
pub const EXPIRY_WARNINGS_TOTAL: &str = "holdfast_expiry_warnings_total";
pub const HOLD_EVENTS_PUBLISHED_TOTAL: &str = "holdfast_hold_events_published_total";
pub const QUEUE_PROMOTIONS_TOTAL: &str = "holdfast_queue_promotions_total";
pub const QUEUE_ENTRIES_TOTAL: &str = "holdfast_queue_entries_total";

/// Every histogram and its buckets, in seconds.
const HISTOGRAMS: &[(&str, &[f64])] = &[
    // The target is under 2 s with Redis healthy, and at most one sweep
    // period (5 min by default) without it.
    (
        RELEASE_LAG_SECONDS,
        &[
            0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
        ],
    ),
    (
        GRAPHQL_REQUEST_DURATION,
        &[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ],
    ),
    (
        SWEEP_DURATION_SECONDS,
        &[0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0],
    ),
];

/// The process's recorder, installed on the first call. The `metrics`
/// facade has one recorder per process, so every app built in one process
/// (tests build many, servers and workers) records into it and renders it.
pub fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = HISTOGRAMS
                .iter()
                .try_fold(PrometheusBuilder::new(), |b, (name, buckets)| {
                    b.set_buckets_for_metric(Matcher::Full((*name).to_owned()), buckets)
                })
                // Only an empty bucket list fails, and none is.
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
    metrics::describe_histogram!(
        SWEEP_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "time one sweep took"
    );
    metrics::describe_gauge!(
        DB_CONNECTIONS,
        "PostgreSQL pool connections by state: in_use, idle, max"
    );
    metrics::describe_gauge!(
        RELEASE_JOBS_DUE,
        "release jobs whose time has come and that no worker has taken yet (read at scrape time)"
    );
    metrics::describe_counter!(
        EVENTS_PUBLISHED_TOTAL,
        "property changes published to Redis for live subscribers"
    );
    metrics::describe_counter!(
        HOLD_EVENTS_PUBLISHED_TOTAL,
        "hold events (EXPIRING, EXPIRED, RELEASED, ...) published to Redis for live subscribers"
    );
    metrics::describe_counter!(
        EVENT_PUBLISH_FAILURES_TOTAL,
        "property changes and hold events that could not be published (Redis down); the change itself stands"
    );
    metrics::describe_counter!(
        ENQUEUE_FAILURES_TOTAL,
        "release jobs that could not be scheduled in Redis (the sweep releases those holds)"
    );
    metrics::describe_counter!(
        QUEUE_PROMOTIONS_TOTAL,
        "holds begun from the line, by what ended the hold before (agent, manager, job, sweep, takeover), or join for a free plot"
    );
    metrics::describe_counter!(
        QUEUE_ENTRIES_TOTAL,
        "queue entries by what became of them: waiting (joined), promoted, left, skipped, closed"
    );
    metrics::describe_counter!(
        EXPIRY_WARNINGS_TOTAL,
        "EXPIRING hold events sent: a hold's agent warned that its end is near"
    );
}

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

/// Counts a release by its source.
pub fn release(source: EndSource) {
    metrics::counter!(RELEASES_TOTAL, "source" => source.as_str()).increment(1);
}

/// Counts a lapsed hold's release, with how long after its `expires_at` it
/// came (both times are the database's clock).
pub fn lapsed_release(source: EndSource, expires_at: DateTime<Utc>, ended_at: DateTime<Utc>) {
    release(source);
    metrics::histogram!(RELEASE_LAG_SECONDS, "source" => source.as_str())
        .record(lag_seconds(expires_at, ended_at));
}

/// Counts a hold that ended: a release or an expiry, by what ended it (an
/// expiry with its lag). A conversion is a sale, not a release.
pub fn hold_ended(r: &reservation::Model) {
    let (Some(source), Some(ended_at)) = (r.end_source, r.ended_at) else {
        return;
    };
    match r.status {
        ReservationStatus::Released => release(source),
        ReservationStatus::Expired => lapsed_release(source, r.expires_at, ended_at),
        ReservationStatus::Active | ReservationStatus::Converted => {}
    }
}

/// Counts what the line did in one write: each hold it began, by what ended
/// the hold before it on the same plot (`join` when the plot was free), and
/// each entry by the status the write gave it.
pub fn line_moved(effects: &Effects) {
    for hold in effects
        .started
        .iter()
        .filter(|h| h.reservation.queue_entry_id.is_some())
    {
        let before = effects
            .ended
            .iter()
            .find(|e| e.reservation.property_id == hold.reservation.property_id)
            .and_then(|e| e.reservation.end_source);
        let source = before.map_or("join", EndSource::as_str);
        metrics::counter!(QUEUE_PROMOTIONS_TOTAL, "source" => source).increment(1);
    }
    for entry in &effects.entries {
        let outcome = match entry.status {
            QueueEntryStatus::Waiting => "waiting",
            QueueEntryStatus::Promoted => "promoted",
            QueueEntryStatus::Left => "left",
            QueueEntryStatus::Skipped => "skipped",
            QueueEntryStatus::Closed => "closed",
        };
        metrics::counter!(QUEUE_ENTRIES_TOTAL, "outcome" => outcome).increment(1);
    }
}

/// Seconds from `expires_at` to `ended_at`; never negative.
pub fn lag_seconds(expires_at: DateTime<Utc>, ended_at: DateTime<Utc>) -> f64 {
    (ended_at - expires_at)
        .to_std()
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}
