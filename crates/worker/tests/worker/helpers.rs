//! Test support: a workspace with agents and plots in a database of its own,
//! a private Redis queue (its keys deleted at the end), and workers started
//! in-process (`App`, as the binary does) or as the real binary, all from
//! holdfast-testkit.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use holdfast_domain::audit::audit;
use holdfast_domain::db::{PoolSettings, connect};
use holdfast_domain::entities::{property, reservation};
use holdfast_domain::job::HoldJob;
use holdfast_domain::reads::{self, PlotCounts};
use holdfast_domain::reservations::reserve;
use holdfast_domain::{Actor, Policy, ProjectId, PropertyId, ReservationId};
use holdfast_queue::ReleaseQueue;
use holdfast_testkit::{Api, Process, Running, Target, TestDb, Workspace};
use holdfast_worker::{App, Config};
use redis::AsyncCommands;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, TransactionTrait,
};

pub type Reservation = reservation::Model;

/// Logs of the code under test, only when `TEST_LOG` is set.
pub fn init_test_log() {
    if std::env::var_os("TEST_LOG").is_some() {
        holdfast_runtime::logging::init(
            "info,holdfast_worker=debug",
            holdfast_runtime::LogFormat::Pretty,
            holdfast_runtime::logging::LogStream::Stdout,
        );
    }
}

/// A workspace with an admin, a manager and a project; a queue of its own.
pub struct World {
    pub conn: DatabaseConnection,
    pub workspace: Workspace,
    pub admin: Actor,
    pub manager: Actor,
    pub project: ProjectId,
    pub queue: ReleaseQueue,
    /// The test's queue; its keys are deleted when the world is dropped.
    pub queue_keys: holdfast_testkit::QueueKeys,
    pub db_url: String,
    // Last, so that the pool closes before the database is dropped.
    _db: TestDb,
}

impl World {
    pub async fn new() -> World {
        init_test_log();
        let db = TestDb::new().await;
        let settings = PoolSettings {
            max_connections: 8,
            ..PoolSettings::default()
        };
        let conn = connect(&db.url, &settings).await.expect("connect");
        let workspace = Workspace::create(&conn, "Acme Homes").await;
        let queue_keys = holdfast_testkit::QueueKeys::new();
        let queue = ReleaseQueue::new(&queue_keys.redis_url, &queue_keys.name).expect("queue");
        World {
            conn,
            admin: workspace.admin,
            manager: workspace.manager,
            project: workspace.project,
            workspace,
            queue,
            queue_keys,
            db_url: db.url.clone(),
            _db: db,
        }
    }

    pub async fn agent(&self) -> Actor {
        self.workspace.agent(&self.conn).await
    }

    pub async fn plots(&self, n: usize) -> Vec<PropertyId> {
        self.workspace.plots(&self.conn, self.project, "P", n).await
    }

    /// Holds of `ttl` on `n` new plots, one agent each.
    pub async fn reserve_many(&self, n: usize, ttl: Duration) -> Vec<Reservation> {
        let policy = policy(ttl);
        let mut out = Vec::with_capacity(n);
        for plot in self.plots(n).await {
            let agent = self.agent().await;
            let r = reserve(&self.conn, &policy, &agent, plot)
                .await
                .result
                .expect("reserve")
                .reservation;
            out.push(r);
        }
        out
    }

    /// Schedules the release job the way the server does after a commit.
    pub async fn schedule(&self, r: &Reservation) {
        self.queue
            .schedule(&job(r), r.expires_at)
            .await
            .expect("schedule");
    }

    pub async fn stored(&self, id: ReservationId) -> Reservation {
        reservation::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .expect("query")
            .expect("reservation")
    }

    pub async fn stored_property(&self, id: PropertyId) -> property::Model {
        property::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .expect("query")
            .expect("property")
    }

    /// Makes a reservation lapse a second ago, as if its hold time had run out.
    pub async fn lapse(&self, id: ReservationId) {
        self.sql(&format!(
            "UPDATE reservation SET created_at = created_at - interval '1 day', \
               expires_at = clock_timestamp() - interval '1 second' WHERE id = '{id}'; \
             UPDATE property SET reserved_until = r.expires_at FROM reservation r \
               WHERE r.id = '{id}' AND property.id = r.property_id AND property.status = 'RESERVED'"
        ))
        .await;
    }

    pub async fn sql(&self, sql: &str) {
        self.conn.execute_unprepared(sql).await.expect(sql);
    }

    pub async fn counts(&self) -> PlotCounts {
        reads::plot_counts(&self.conn, self.admin.workspace_id, &[self.project])
            .await
            .expect("counts")[&self.project]
    }

    /// Every invariant the audit checks holds.
    pub async fn audit_clean(&self) {
        let violations = audit(&self.conn).await.expect("audit");
        assert!(violations.is_empty(), "invariants broken: {violations:#?}");
    }

    /// Waits until every reservation has ended; returns them as stored.
    pub async fn wait_all_ended(
        &self,
        ids: &[ReservationId],
        within: Duration,
    ) -> Vec<Reservation> {
        let deadline = Instant::now() + within;
        loop {
            let mut all = Vec::with_capacity(ids.len());
            for id in ids {
                all.push(self.stored(*id).await);
            }
            if all.iter().all(|r| r.ended_at.is_some()) {
                return all;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {} reservations still active after {within:?}",
                all.iter().filter(|r| r.ended_at.is_none()).count(),
                ids.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The worker's settings for this world, as flags (flags win over any
    /// variable the test's environment may have set).
    pub fn config(&self, sweep: &str) -> Config {
        Config::load(self.args(sweep)).expect("config")
    }

    pub fn args(&self, sweep: &str) -> Vec<String> {
        self.args_with_redis(sweep, &holdfast_testkit::redis_url())
    }

    pub fn args_with_redis(&self, sweep: &str, redis_url: &str) -> Vec<String> {
        [
            "holdfast-worker",
            "--database-url",
            &self.db_url,
            "--redis-url",
            redis_url,
            "--queue",
            &self.queue_keys.name,
            "--sweep-schedule",
            sweep,
            "--metrics-listen",
            "127.0.0.1:0",
            "--worker-concurrency",
            "8",
            "--shutdown-timeout",
            "10s",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect()
    }

    /// Starts a worker in this process, as the binary would.
    pub async fn spawn_worker(&self, sweep: &str) -> TestWorker {
        self.spawn_worker_with(self.config(sweep)).await
    }

    pub async fn spawn_worker_with(&self, config: Config) -> TestWorker {
        let app = App::build(config).await.expect("build");
        let addr = app.metrics_addr();
        let app = Running::spawn(|stop| app.run_until(stop));
        TestWorker { addr, app }
    }

    /// Starts the real binary (JSON logs, kept); returns once it listens.
    pub async fn spawn_binary(&self, sweep: &str) -> Process {
        let target = Target {
            database_url: self.db_url.clone(),
            redis_url: self.queue_keys.redis_url.clone(),
            queue: self.queue_keys.name.clone(),
        };
        target.worker(sweep, &[]).await
    }

    pub async fn redis(&self) -> redis::aio::ConnectionManager {
        self.queue.connection().await.expect("redis")
    }

    /// Holds the rows of the reservations' plots, so that a worker that takes
    /// their jobs is stuck on them (each attempt waits for the lock) until the
    /// transaction ends.
    pub async fn lock_plots(&self, rs: &[Reservation]) -> DatabaseTransaction {
        let blocker = self.conn.begin().await.expect("begin");
        let plots: Vec<String> = rs.iter().map(|r| format!("'{}'", r.property_id)).collect();
        blocker
            .execute_unprepared(&format!(
                "SELECT 1 FROM property WHERE id IN ({}) FOR UPDATE",
                plots.join(", ")
            ))
            .await
            .expect("lock plots");
        blocker
    }

    /// The ids of the jobs some worker holds in flight right now.
    pub async fn in_flight(&self) -> HashSet<String> {
        let mut redis = self.redis().await;
        let pattern = format!("{}:*", self.queue.config().inflight_jobs_set());
        let sets: Vec<String> = redis.keys(&pattern).await.expect("keys");
        let mut ids = HashSet::new();
        for set in sets {
            let members: Vec<String> = redis.smembers(&set).await.expect("smembers");
            ids.extend(members);
        }
        ids
    }

    /// Waits until some worker holds at least one job; returns what it holds.
    pub async fn wait_in_flight(&self, within: Duration) -> HashSet<String> {
        let deadline = Instant::now() + within;
        loop {
            let held = self.in_flight().await;
            if !held.is_empty() {
                return held;
            }
            assert!(
                Instant::now() < deadline,
                "no job in flight within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn policy(ttl: Duration) -> Policy {
    Policy {
        ttl,
        max_extensions: 2,
        max_active_per_agent: 0,
        ..Policy::default()
    }
}

pub fn job(r: &Reservation) -> HoldJob {
    HoldJob::release(r)
}

/// Seconds from `expires_at` to `ended_at`.
pub fn lag(r: &Reservation) -> f64 {
    let ended: DateTime<Utc> = r.ended_at.expect("ended");
    (ended - r.expires_at).num_milliseconds() as f64 / 1000.0
}

/// A worker running in this process.
pub struct TestWorker {
    pub addr: std::net::SocketAddr,
    app: Running<anyhow::Result<()>>,
}

impl TestWorker {
    /// Stops it as SIGTERM would, and waits for it.
    pub async fn stop(self) {
        let ran = self.app.stop(Duration::from_secs(15)).await;
        ran.expect("worker stops within 15 s").expect("worker ran");
    }

    pub async fn metrics(&self) -> String {
        get(self.addr, "/metrics").await.1
    }
}

/// GET on a worker's HTTP side: (status, body).
pub async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    Api::new(addr).get(path).await
}

pub use holdfast_testkit::{TcpProxy, eventually, sample};
