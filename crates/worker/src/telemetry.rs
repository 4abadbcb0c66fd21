//! Logs and metrics: the tracing subscriber the binary installs, and the
//! Prometheus recorder behind `/metrics` with the worker's metric names.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use holdfast_queue::{EventPublisher, PropertyChanged};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

// The series the server reports too, named once for both.
pub use holdfast_telemetry::{
    DB_CONNECTIONS, EVENT_PUBLISH_FAILURES_TOTAL, EVENTS_PUBLISHED_TOTAL, RELEASE_JOBS_DUE,
    RELEASE_LAG_SECONDS, RELEASES_TOTAL, observe_jobs_due, observe_pool,
};

pub const RELEASE_JOBS_TOTAL: &str = "holdfast_release_jobs_total";
pub const RELEASE_JOBS_IN_FLIGHT: &str = "holdfast_release_jobs_in_flight";
pub const SWEEPS_TOTAL: &str = "holdfast_sweeps_total";
pub const SWEEP_DURATION_SECONDS: &str = "holdfast_sweep_duration_seconds";

/// Lag buckets: the target is under 2 s with Redis healthy, and at most one
/// sweep period (5 min by default) without it.
const LAG_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

/// Installs the log subscriber (once; later calls, as in tests, do nothing).
pub fn init_tracing(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        // One object per line; every line names the spans it happened in
        // (release_job, sweep, ...) with their ids.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}

/// The process-wide Prometheus recorder. Several workers in one process (as
/// in tests) share it, as they would share a scrape.
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(RELEASE_LAG_SECONDS.to_owned()), LAG_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(SWEEP_DURATION_SECONDS.to_owned()),
                        &[0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0],
                    )
                });
            match builder {
                Ok(builder) => match builder.install_recorder() {
                    Ok(handle) => handle,
                    // Another recorder is installed: ours still renders what
                    // it is given, and the process keeps running.
                    Err(_) => PrometheusBuilder::new().build_recorder().handle(),
                },
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// Counts one release and its lag (from `expires_at` to `ended_at`, both the
/// database's clock).
pub fn record_release(source: &'static str, expires_at: DateTime<Utc>, ended_at: DateTime<Utc>) {
    metrics::counter!(RELEASES_TOTAL, "source" => source).increment(1);
    metrics::histogram!(RELEASE_LAG_SECONDS, "source" => source)
        .record(lag_seconds(expires_at, ended_at));
}

/// Seconds from `expires_at` to `ended_at`; never negative.
pub fn lag_seconds(expires_at: DateTime<Utc>, ended_at: DateTime<Utc>) -> f64 {
    (ended_at - expires_at)
        .to_std()
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

/// Publishes released holds for live subscribers, after their commit.
pub async fn publish(events: &EventPublisher, changes: &[PropertyChanged]) {
    holdfast_telemetry::publish(
        events,
        changes,
        "could not publish released holds; live subscribers miss them",
    )
    .await;
}
