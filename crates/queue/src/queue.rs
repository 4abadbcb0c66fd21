//! `ReleaseQueue`: a handle on one release-job queue, shared by every request
//! of the server and by the worker. It connects lazily and bounds every call,
//! so a Redis outage makes a call fail fast instead of hanging a request.

use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskId};
use apalis_redis::{Config, ConnectionManager, RedisStorage};
use chrono::{DateTime, Utc};
use holdfast_domain::job::HoldJob;
use redis::aio::ConnectionManagerConfig;
use tokio::sync::OnceCell;

use crate::QueueError;
use crate::storage::{ReleaseStorage, storage_config, validate_queue_name};

/// How long `schedule` and `ping` may take, connecting included.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// TCP keepalive on every connection to Redis: an idle connection whose
/// peer went silent is probed after 5 s, every 2 s, 3 times.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
const KEEPALIVE_RETRIES: u32 = 3;
/// The kernel drops a connection whose sent data stays unacknowledged this
/// long. Every call is bounded already (a second or two, above), but a
/// timed-out call leaves its connection in place: without this, a silent
/// link would fail every call until the kernel gives up retransmitting, some
/// 15 minutes; with it, the connection breaks and is made again.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);

/// A Redis client for `redis_url` whose connections notice a dead peer
/// within seconds (keepalive, user timeout), for every connection the
/// project opens: the shared one, and each live-updates subscription.
pub fn client(redis_url: &str) -> Result<redis::Client, QueueError> {
    use redis::IntoConnectionInfo;
    use redis::io::tcp::{TcpSettings, socket2::TcpKeepalive};

    let info = redis_url
        .into_connection_info()
        .map_err(QueueError::InvalidUrl)?;
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    let tcp: TcpSettings = info
        .tcp_settings()
        .clone()
        .set_keepalive(keepalive)
        .set_user_timeout(TCP_USER_TIMEOUT);
    redis::Client::open(info.set_tcp_settings(tcp)).map_err(QueueError::InvalidUrl)
}

#[derive(Clone)]
pub struct ReleaseQueue {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    queue_name: String,
    config: Config,
    timeout: Duration,
    /// Made on first use: `new` must not need Redis, nor a runtime.
    conn: OnceCell<ConnectionManager>,
}

impl std::fmt::Debug for ReleaseQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleaseQueue")
            .field("queue", &self.inner.queue_name)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl ReleaseQueue {
    /// Connects lazily: fails only on a malformed URL or queue name, never
    /// because Redis is down.
    pub fn new(redis_url: &str, queue_name: &str) -> Result<Self, QueueError> {
        validate_queue_name(queue_name)?;
        let client = client(redis_url)?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                queue_name: queue_name.to_owned(),
                config: storage_config(queue_name),
                timeout: DEFAULT_TIMEOUT,
                conn: OnceCell::new(),
            }),
        })
    }

    /// The same queue with another bound on `schedule` and `ping`.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                client: inner.client.clone(),
                queue_name: inner.queue_name.clone(),
                config: inner.config.clone(),
                timeout,
                conn: inner.conn.clone(),
            }),
        }
    }

    pub fn queue_name(&self) -> &str {
        &self.inner.queue_name
    }

    /// The apalis-redis configuration of this queue.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The shared, self-reconnecting connection. Creating it does no I/O; the
    /// first command connects.
    pub async fn connection(&self) -> Result<ConnectionManager, QueueError> {
        let conn = self
            .inner
            .conn
            .get_or_try_init(|| async {
                // Fail fast and let the caller retry: a request or a poll must
                // not wait through a long reconnect back-off.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(1)))
                    .set_response_timeout(Some(Duration::from_secs(2)))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_millis(500));
                ConnectionManager::new_lazy_with_config(self.inner.client.clone(), config)
            })
            .await?;
        Ok(conn.clone())
    }

    /// The apalis-redis storage the worker consumes this queue through.
    pub async fn storage(&self) -> Result<ReleaseStorage, QueueError> {
        Ok(RedisStorage::new(self.connection().await?).with_config(self.inner.config.clone()))
    }

    /// Schedules the job to run at `due`, rounded up to the next whole second
    /// (the queue's resolution) so that it never runs before `due`. A job
    /// whose task id is already queued is not queued twice; the id names the
    /// reservation's version, so an extension's job is a new one.
    pub async fn schedule(&self, job: &HoldJob, due: DateTime<Utc>) -> Result<(), QueueError> {
        self.schedule_all(&[(*job, due)]).await
    }

    /// Schedules several jobs, each at its time, in one round trip: a hold's
    /// release and its warning go together.
    pub async fn schedule_all(&self, jobs: &[(HoldJob, DateTime<Utc>)]) -> Result<(), QueueError> {
        let tasks = jobs
            .iter()
            .map(|(job, due)| {
                Ok(TaskBuilder::new(serde_json::to_vec(job)?)
                    .task_id(TaskId::from_string(job.task_id()))
                    .run_at_timestamp(due_timestamp(*due))
                    .build())
            })
            .collect::<Result<Vec<_>, QueueError>>()?;
        let (queued, scheduled) = self
            .bounded(async {
                let mut conn = self.connection().await?;
                Ok(
                    apalis_redis::queries::push_tasks(&mut conn, &self.inner.config, &tasks)
                        .await?,
                )
            })
            .await?;
        if usize::try_from(queued + scheduled).unwrap_or(usize::MAX) < tasks.len() {
            tracing::debug!(
                jobs = tasks.len(),
                new = queued + scheduled,
                "some jobs were already queued"
            );
        }
        Ok(())
    }

    /// Jobs whose time has come but that no worker has taken yet: those
    /// scheduled up to now plus those waiting in the active list. A number
    /// that keeps growing means the workers do not keep up (or are down).
    pub async fn jobs_due(&self) -> Result<u64, QueueError> {
        self.bounded(async {
            let mut conn = self.connection().await?;
            let now = chrono::Utc::now().timestamp();
            let (scheduled, waiting): (u64, u64) = redis::pipe()
                .cmd("ZCOUNT")
                .arg(self.inner.config.scheduled_jobs_set())
                .arg("-inf")
                .arg(now)
                .cmd("LLEN")
                .arg(self.inner.config.active_jobs_list())
                .query_async(&mut conn)
                .await?;
            Ok(scheduled + waiting)
        })
        .await
    }

    /// Whether Redis answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), QueueError> {
        self.bounded(async {
            let mut conn = self.connection().await?;
            redis::cmd("PING").query_async::<()>(&mut conn).await?;
            Ok(())
        })
        .await
    }

    async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, QueueError>>,
    ) -> Result<T, QueueError> {
        tokio::time::timeout(self.inner.timeout, work)
            .await
            .map_err(|_| QueueError::Timeout(self.inner.timeout))?
    }
}

/// Whole seconds since the epoch, rounded up.
fn due_timestamp(due: DateTime<Utc>) -> u64 {
    let secs = due.timestamp() + i64::from(due.timestamp_subsec_nanos() > 0);
    u64::try_from(secs).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_are_rounded_up_to_whole_seconds() {
        let whole = DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let later = DateTime::from_timestamp(1_700_000_000, 1).expect("time");
        assert_eq!(due_timestamp(whole), 1_700_000_000);
        assert_eq!(due_timestamp(later), 1_700_000_001);
    }

    #[test]
    fn a_queue_is_made_without_redis_and_without_a_runtime() {
        // Nothing listens on port 1, and no runtime runs this test.
        let queue = ReleaseQueue::new("redis://127.0.0.1:1", "q").expect("lazy");
        assert_eq!(queue.queue_name(), "q");
    }

    #[test]
    fn every_connection_to_redis_notices_a_silent_peer() {
        let client = client("redis://127.0.0.1:6379/0").expect("a client");
        let tcp = client.get_connection_info().tcp_settings();
        assert_eq!(tcp.user_timeout(), Some(TCP_USER_TIMEOUT));
        assert!(tcp.keepalive().is_some());
    }

    #[test]
    fn a_malformed_url_is_refused_at_once() {
        assert!(matches!(
            ReleaseQueue::new("http://nope", "q"),
            Err(QueueError::InvalidUrl(_))
        ));
        assert!(matches!(
            ReleaseQueue::new("redis://127.0.0.1:6379", "a b"),
            Err(QueueError::InvalidQueueName { .. })
        ));
    }
}
