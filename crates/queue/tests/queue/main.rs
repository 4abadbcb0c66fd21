//! The release queue against the real Redis: what `schedule` writes, that the
//! worker's storage reads it back, and that an outage fails fast.

use std::time::{Duration, Instant};

use apalis::prelude::*;
use chrono::Utc;
use holdfast_domain::job::{HoldJob, JobKind};
use holdfast_domain::{ReservationId, WorkspaceId};
use holdfast_queue::{QueueError, ReleaseQueue, Retention, validate_queue_name};
use redis::AsyncCommands;

/// A private queue, whose keys are deleted when the test ends.
struct TestQueue {
    queue: ReleaseQueue,
    /// Its name; its keys are deleted when the test is done.
    keys: holdfast_testkit::QueueKeys,
}

impl TestQueue {
    fn new() -> Self {
        let keys = holdfast_testkit::QueueKeys::new();
        let queue = ReleaseQueue::new(&keys.redis_url, &keys.name).expect("queue");
        Self { queue, keys }
    }

    async fn conn(&self) -> redis::aio::ConnectionManager {
        self.queue.connection().await.expect("connection")
    }

    async fn keys(&self) -> Vec<String> {
        let mut conn = self.conn().await;
        let mut keys: Vec<String> = conn
            .keys(format!("{}:*", self.keys.name))
            .await
            .expect("keys");
        keys.sort();
        keys
    }
}

fn job(version: i32) -> HoldJob {
    HoldJob {
        workspace_id: WorkspaceId::new(),
        reservation_id: ReservationId::new(),
        version,
        kind: JobKind::Release,
    }
}

#[tokio::test]
async fn a_scheduled_job_waits_in_the_queue_until_its_due_second() {
    let q = TestQueue::new();
    let j = job(1);
    let due = Utc::now() + chrono::Duration::milliseconds(60_500);

    q.queue.schedule(&j, due).await.expect("schedule");

    let mut conn = q.conn().await;
    let config = q.queue.config();
    let score: Option<f64> = conn
        .zscore(config.scheduled_jobs_set(), j.task_id())
        .await
        .expect("zscore");
    // Rounded up: never before expires_at.
    assert_eq!(score, Some((due.timestamp() + 1) as f64));
    let payload: Vec<u8> = conn
        .hget(config.job_data_hash(), j.task_id())
        .await
        .expect("hget");
    let decoded: HoldJob = serde_json::from_slice(&payload).expect("json");
    assert_eq!(decoded, j);
    let active: i64 = conn.llen(config.active_jobs_list()).await.expect("llen");
    assert_eq!(active, 0, "not due yet");
    assert!(
        q.keys()
            .await
            .iter()
            .all(|k| k.starts_with(&format!("{}:", q.keys.name))),
        "every key is prefixed by the queue name"
    );
}

#[tokio::test]
async fn scheduling_the_same_job_twice_queues_it_once_but_a_new_version_is_a_new_job() {
    let q = TestQueue::new();
    let first = job(1);
    let due = Utc::now() + chrono::Duration::seconds(60);
    q.queue.schedule(&first, due).await.expect("schedule");
    q.queue.schedule(&first, due).await.expect("schedule again");
    let extended = HoldJob {
        version: 2,
        ..first
    };
    q.queue
        .schedule(&extended, due + chrono::Duration::seconds(60))
        .await
        .expect("schedule v2");

    let mut conn = q.conn().await;
    let ids: Vec<String> = conn
        .zrange(q.queue.config().scheduled_jobs_set(), 0, -1)
        .await
        .expect("zrange");
    assert_eq!(ids, vec![first.task_id(), extended.task_id()]);
}

type Sender = tokio::sync::mpsc::UnboundedSender<HoldJob>;

async fn forward(job: HoldJob, tx: Data<Sender>) -> Result<(), BoxDynError> {
    tx.send(job).map_err(|e| BoxDynError::from(e.to_string()))
}

/// Runs an apalis worker on the queue until it has handled one job.
async fn consume_one(q: &TestQueue) -> HoldJob {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<HoldJob>();
    let storage = q
        .queue
        .storage()
        .await
        .expect("storage")
        .poll_with_interval(holdfast_queue::POLL_INTERVAL);
    let worker = WorkerBuilder::new(format!("{}-test-worker", q.keys.name))
        .backend(storage)
        .data(tx)
        .build(forward);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async move {
        let _ = stop_rx.await;
        Ok::<(), std::io::Error>(())
    }));
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("the job ran within 5 s")
        .expect("a job");
    stop_tx.send(()).expect("stop");
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("worker stops")
        .expect("join")
        .expect("worker ran");
    got
}

#[tokio::test]
async fn the_worker_storage_hands_back_the_job_the_server_scheduled() {
    let q = TestQueue::new();
    let j = job(3);
    q.queue.schedule(&j, Utc::now()).await.expect("schedule");

    let got = consume_one(&q).await;

    assert_eq!(got, j);
    let mut conn = q.conn().await;
    let done: Vec<String> = conn
        .smembers(q.queue.config().done_jobs_set())
        .await
        .expect("smembers");
    assert_eq!(done, vec![j.task_id()], "the job was acknowledged");
}

#[tokio::test]
async fn finished_jobs_are_forgotten_after_their_retention_but_not_before() {
    let q = TestQueue::new();
    let finished = job(1);
    let waiting = job(1);
    q.queue
        .schedule(&finished, Utc::now())
        .await
        .expect("schedule");
    consume_one(&q).await;
    q.queue
        .schedule(&waiting, Utc::now() + chrono::Duration::hours(1))
        .await
        .expect("schedule");
    let config = q.queue.config().clone();
    let mut conn = q.conn().await;

    let kept = q
        .queue
        .purge_finished(Retention::default())
        .await
        .expect("purge");
    assert_eq!(kept, 0, "finished a moment ago: kept for an hour");

    let removed = q
        .queue
        .purge_finished(Retention {
            done: Duration::ZERO,
            ..Retention::default()
        })
        .await
        .expect("purge");

    assert_eq!(removed, 1);
    let done: Vec<String> = conn.smembers(config.done_jobs_set()).await.expect("done");
    assert!(done.is_empty(), "{done:?}");
    let payloads: Vec<String> = conn.hkeys(config.job_data_hash()).await.expect("data");
    assert_eq!(
        payloads,
        vec![waiting.task_id()],
        "the waiting job is untouched"
    );
    let meta: bool = conn
        .exists(format!("{}:{}", config.job_meta_hash(), finished.task_id()))
        .await
        .expect("exists");
    assert!(!meta, "its metadata is gone");
}

#[tokio::test]
async fn scheduling_fails_fast_when_redis_is_unreachable() {
    // Nothing listens on port 1.
    let queue = ReleaseQueue::new("redis://127.0.0.1:1", "hf-unreachable").expect("lazy");
    let started = Instant::now();
    let err = queue
        .schedule(&job(1), Utc::now())
        .await
        .expect_err("Redis is down");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            err,
            QueueError::Redis(_) | QueueError::Push(_) | QueueError::Timeout(_)
        ),
        "{err:?}"
    );
    assert!(queue.ping().await.is_err());
}

#[tokio::test]
async fn scheduling_never_hangs_on_a_redis_that_does_not_answer() {
    // A server that accepts connections and never replies: the worst outage.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let queue = ReleaseQueue::new(&format!("redis://{addr}"), "hf-silent")
        .expect("lazy")
        .with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = queue
        .schedule(&job(1), Utc::now())
        .await
        .expect_err("no answer");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, QueueError::Timeout(_) | QueueError::Redis(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn ping_answers_when_redis_is_up() {
    let q = TestQueue::new();
    q.queue.ping().await.expect("ping");
    assert!(validate_queue_name(&q.keys.name).is_ok());
}
