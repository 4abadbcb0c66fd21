//! The worker's own Prometheus series; those the server reports too, every
//! histogram's buckets and the process's recorder are holdfast-runtime's.

use std::sync::Once;

// The series the server reports too, named once for both.
pub use holdfast_runtime::metrics::{
    DB_CONNECTIONS, EVENT_PUBLISH_FAILURES_TOTAL, EVENTS_PUBLISHED_TOTAL, RELEASE_JOBS_DUE,
    RELEASE_LAG_SECONDS, RELEASES_TOTAL, SWEEP_DURATION_SECONDS, hold_ended, lag_seconds,
};

pub const RELEASE_JOBS_TOTAL: &str = "holdfast_release_jobs_total";
pub const RELEASE_JOBS_IN_FLIGHT: &str = "holdfast_release_jobs_in_flight";
/// 1 while the worker consumes release jobs, 0 while it starts, or starts
/// again after losing Redis: not part of readiness (Redis is), but shows a
/// worker that cannot get going.
pub const RELEASE_JOBS_CONSUMING: &str = "holdfast_release_jobs_consuming";
pub const SWEEPS_TOTAL: &str = "holdfast_sweeps_total";

/// Installs the process's recorder (holdfast-runtime's) if no app did yet,
/// and describes the worker's own series in it, once.
pub fn describe() {
    holdfast_runtime::metrics::recorder();
    static DESCRIBED: Once = Once::new();
    DESCRIBED.call_once(|| {
        metrics::describe_counter!(
            RELEASE_JOBS_TOTAL,
            "release jobs handled, by outcome: released, nothing_to_do, not_due, retry, failed, panicked"
        );
        metrics::describe_gauge!(RELEASE_JOBS_IN_FLIGHT, "release jobs being handled now");
        metrics::describe_gauge!(
            RELEASE_JOBS_CONSUMING,
            "1 while this worker consumes release jobs, 0 while it (re)starts"
        );
        metrics::describe_counter!(
            SWEEPS_TOTAL,
            "sweep ticks, by outcome: swept, skipped (another replica swept), failed"
        );
    });
}
