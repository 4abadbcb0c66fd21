//! Forgetting finished jobs. apalis-redis keeps every job's payload, its
//! metadata and its id in the done (or dead) set forever; with one job per
//! reservation Redis would grow without end. Its own `vacuum` reads the whole
//! payload hash (scheduled jobs included) in one script, which blocks Redis
//! for as long as that takes; this looks at a bounded sample per call.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use crate::{QueueError, ReleaseQueue};

static PURGE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/purge_finished.lua")));

/// How long finished jobs are kept, and how many are looked at per call.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Jobs that ran to the end (released, or nothing to do).
    pub done: Duration,
    /// Jobs given up on: kept longer, to be looked into.
    pub dead: Duration,
    /// Members of each set looked at per call.
    pub batch: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            done: Duration::from_secs(3600),
            dead: Duration::from_secs(7 * 24 * 3600),
            batch: 1000,
        }
    }
}

impl ReleaseQueue {
    /// Forgets finished jobs older than the retention; returns how many.
    /// Safe to run from every replica at once (each call is one script).
    pub async fn purge_finished(&self, retention: Retention) -> Result<u64, QueueError> {
        let mut conn = self.connection().await?;
        let config = self.config();
        let mut removed = 0u64;
        for (set, age) in [
            (config.done_jobs_set(), retention.done),
            (config.dead_jobs_set(), retention.dead),
        ] {
            let n: u64 = PURGE
                .key(set)
                .key(config.job_data_hash())
                .key(config.job_meta_hash())
                .arg(age.as_secs())
                .arg(retention.batch)
                .invoke_async(&mut conn)
                .await?;
            removed += n;
        }
        Ok(removed)
    }
}
