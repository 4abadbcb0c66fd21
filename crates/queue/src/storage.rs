//! How the queue is laid out in Redis: the apalis-redis configuration both
//! the pushing side and the consuming side must agree on.

use std::time::Duration;

use apalis_redis::{Config, ConnectionManager, RedisStorage};
use holdfast_domain::job::HoldJob;

use crate::QueueError;

/// How often an idle worker looks for due jobs. apalis-redis only looks on its
/// heartbeat unless told otherwise. Due times are whole seconds, rounded up,
/// so a job runs up to 1 s after `expires_at` plus one poll: polling four
/// times a second keeps the lag under ~1.3 s (the target is 2 s), for one
/// cheap Lua call per poll.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How often a worker tells Redis it is alive (and re-enqueues the in-flight
/// jobs of workers that stopped doing so).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);

/// A worker silent for this many heartbeats is taken for dead, and the jobs it
/// held go back to the queue: a killed worker's jobs run again within
/// `HEARTBEAT_INTERVAL * MISSED_HEARTBEATS` (plus one heartbeat).
pub const MISSED_HEARTBEATS: usize = 5;

/// The storage the worker consumes; its `Args` are the release job.
pub type ReleaseStorage = RedisStorage<HoldJob, ConnectionManager>;

/// A queue name is the prefix of every key: it must be non-empty and plain.
pub fn validate_queue_name(name: &str) -> Result<(), QueueError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 100 {
        Some("it is longer than 100 characters")
    } else if !name.chars().all(|c| c.is_ascii_graphic()) {
        Some("it may only contain printable ASCII characters, no spaces")
    } else if name.contains(['{', '}', '*', '?', '[', ']']) {
        // Braces change Redis Cluster hashing, globs break key scans.
        Some("it may not contain { } * ? [ ]")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(QueueError::InvalidQueueName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The apalis-redis configuration for `queue_name`. The queue name is set
/// explicitly: the default is the payload's Rust type name, which contains
/// `::` and would change with a refactoring.
pub fn storage_config(queue_name: &str) -> Config {
    Config::default()
        .queue(queue_name)
        .heartbeat_interval(HEARTBEAT_INTERVAL)
        .missed_heartbeats(MISSED_HEARTBEATS)
        // Nobody subscribes to apalis' pub/sub events; don't publish them.
        .emit_events(false)
        // Results must be persisted: the ack that takes a job out of the
        // worker's in-flight set, or schedules its retry, rides on it.
        .persist_results(true)
        .lock_tasks(true)
}

/// The key that guards a sweep tick across worker replicas.
pub fn sweep_lock_key(queue_name: &str) -> String {
    format!("{queue_name}:sweep-lock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_the_queue_starts_with_its_name() {
        let c = storage_config("hf-x");
        for key in [
            c.active_jobs_list(),
            c.workers_set(),
            c.dead_jobs_set(),
            c.done_jobs_set(),
            c.failed_jobs_set(),
            c.inflight_jobs_set(),
            c.job_data_hash(),
            c.job_meta_hash(),
            c.scheduled_jobs_set(),
            c.signal_list(),
            c.idempotency_key_set(),
            sweep_lock_key("hf-x"),
        ] {
            assert!(key.starts_with("hf-x:"), "{key}");
        }
    }

    #[test]
    fn queue_names_that_would_break_keys_are_refused() {
        assert!(validate_queue_name("holdfast").is_ok());
        assert!(validate_queue_name("hf-test-0a1b").is_ok());
        for bad in ["", "a b", "a{b}", "a*", "é"] {
            assert!(validate_queue_name(bad).is_err(), "{bad:?}");
        }
    }
}
