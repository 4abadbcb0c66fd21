//! A smoke run of the load generator, so that it keeps working: the real
//! server in-process on 127.0.0.1:0 over a fresh database, a small project,
//! four agents, spread for 500 reservations and the others for two seconds
//! each; and the floor server of `BENCH_FLOOR` the same way. Only
//! correctness is asserted (invariants, one winner in `hot`, one release job
//! per hold), never timing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use holdfast_bench::client::AgentClient;
use holdfast_bench::floor::FloorServer;
use holdfast_bench::invariants::{self, Seen};
use holdfast_bench::outcome::{Op, Outcome};
use holdfast_bench::scenarios::{self, Scenario, Target};
use holdfast_bench::setup;
use holdfast_domain::db::{self, PoolSettings};
use holdfast_server::auth::Tokens;
use holdfast_server::config::{Deployment, Rules};
use holdfast_server::{Application, Config};
use holdfast_testkit::{QueueKeys, TestDb};
use sea_orm::DatabaseConnection;
use tokio::sync::oneshot;

const SECRET: &str = "a-bench-smoke-secret-that-is-at-least-32-bytes";
const AGENTS: u32 = 4;
const PLOTS: u64 = 2000;
/// Spread runs by count, not time: on a fast machine 2 s of it took every
/// plot (about 1,000 a second) and left `hot` none.
const SPREAD_REQUESTS: u64 = 500;

/// Which server the load generator drives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    /// holdfast-server's `Application`.
    Real,
    /// `holdfast-bench floor-server`: the same reserve without GraphQL.
    Floor,
}

struct Bench {
    db: DatabaseConnection,
    queue_name: String,
    url: String,
    project_id: String,
    clients: Vec<AgentClient>,
    /// The queue's keys are deleted from Redis when the bench is dropped.
    _queue: QueueKeys,
    _shutdown: oneshot::Sender<()>,
    // Dropped last: the database goes away after the app stops using it.
    _test_db: TestDb,
}

impl Bench {
    async fn start(server: Server) -> Bench {
        let test_db = TestDb::new().await;
        let queue = QueueKeys::new();
        let config = Config {
            deployment: Deployment {
                database_url: test_db.url.clone(),
                redis_url: holdfast_testkit::redis_url(),
                queue: queue.name.clone(),
                ..Deployment::default()
            },
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            jwt_secret: Some(SECRET.to_owned()),
            rules: Rules {
                max_active_per_agent: 0,
                ..Rules::default()
            },
            db_max_connections: 10,
            ..Config::default()
        };
        let (tx, rx) = oneshot::channel::<()>();
        let stopped = async {
            let _ = rx.await;
        };
        let addr = match server {
            Server::Real => {
                let app = Application::build(&config).await.expect("build the app");
                let addr = app.addr();
                tokio::spawn(app.run_until(stopped));
                addr
            }
            Server::Floor => {
                let floor = FloorServer::bind(&config).await.expect("build the floor");
                let addr = floor.addr().expect("address");
                tokio::spawn(floor.run_until(stopped));
                addr
            }
        };
        let url = format!("http://{addr}/graphql");
        let db = db::connect(&test_db.url, &PoolSettings::default())
            .await
            .expect("connect");
        let seeded = setup::seed(&db, PLOTS, AGENTS).await.expect("seed");
        let tokens = Tokens::new(SECRET.as_bytes());
        let ws = seeded.workspace_id.parse().expect("workspace id");
        let clients = seeded
            .agent_ids
            .iter()
            .map(|id| {
                let token = tokens
                    .mint(id.parse().expect("user id"), ws, Duration::from_secs(3600))
                    .expect("mint");
                AgentClient::new(id, &token, &url).expect("client")
            })
            .collect();
        Bench {
            db,
            queue_name: queue.name.clone(),
            url,
            project_id: seeded.project_id,
            clients,
            _queue: queue,
            _shutdown: tx,
            _test_db: test_db,
        }
    }

    async fn target(&self) -> Target {
        Target {
            clients: self.clients.clone(),
            project_id: self.project_id.clone(),
            plots: Arc::new(
                setup::available_plots(&self.db, &self.project_id)
                    .await
                    .expect("plots"),
            ),
        }
    }

    /// Spread for `SPREAD_REQUESTS`, every one of them a new hold; then hot,
    /// with exactly one winner.
    async fn spread_then_hot(&self) {
        let spread = self.run(Scenario::Spread, 2, Some(SPREAD_REQUESTS)).await;
        let reserved = spread.summary.count(Op::Reserve, Outcome::Ok);
        assert_eq!(
            reserved,
            SPREAD_REQUESTS,
            "spread reserves as many plots as it asked for:\n{}",
            spread.summary.render()
        );
        assert_eq!(
            reserved,
            spread.summary.total.count,
            "every spread request reserves an available plot:\n{}",
            spread.summary.render()
        );

        let hot = self.run(Scenario::Hot, 2, None).await;
        assert!(hot.failures.is_empty(), "{:?}", hot.failures);
        assert_eq!(hot.summary.count(Op::Reserve, Outcome::Ok), 1);
        assert_eq!(
            hot.summary.count(Op::Reserve, Outcome::Unavailable),
            u64::from(AGENTS) - 1
        );
    }

    /// How many release jobs wait in the queue's scheduled set.
    async fn scheduled_jobs(&self) -> u64 {
        let set = holdfast_queue::storage_config(&self.queue_name).scheduled_jobs_set();
        let mut redis = redis::Client::open(holdfast_testkit::redis_url())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("redis");
        redis::cmd("ZCARD")
            .arg(set)
            .query_async(&mut redis)
            .await
            .expect("ZCARD")
    }

    /// Runs `scenario` for `seconds`, or for `count` requests when given.
    async fn run(
        &self,
        scenario: Scenario,
        seconds: u64,
        count: Option<u64>,
    ) -> scenarios::RunReport {
        let target = self.target().await;
        let since = invariants::db_now(&self.db).await.expect("now");
        let duration = count.is_none().then(|| Duration::from_secs(seconds));
        let report = scenarios::run(scenario, &target, duration, count)
            .await
            .expect("run");
        let s = &report.summary;
        assert_eq!(
            s.count_outcome(Outcome::Error) + s.count_outcome(Outcome::Transport),
            0,
            "{} had failures:\n{}",
            scenario.name(),
            s.render()
        );
        let seen = Seen {
            since,
            reserved: s.count(Op::Reserve, Outcome::Ok),
            unanswered: 0,
        };
        let broken = invariants::check(
            &self.db,
            &self.project_id,
            target.clients.first(),
            Some(&seen),
        )
        .await
        .expect("check");
        assert!(
            broken.is_empty(),
            "{}: broken invariants: {broken:?}",
            scenario.name()
        );
        report
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_load_keeps_every_invariant_and_a_hot_plot_has_exactly_one_winner() {
    let bench = Bench::start(Server::Real).await;
    assert!(bench.url.starts_with("http://127.0.0.1:"));

    bench.spread_then_hot().await;

    let mixed = bench.run(Scenario::Mixed, 2, None).await;
    assert!(mixed.summary.count(Op::Read, Outcome::Ok) > 0);

    let story = bench.run(Scenario::Story25, 2, None).await;
    assert!(story.summary.count(Op::Release, Outcome::Ok) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_server_reserves_as_the_server_does_with_a_release_job_per_hold() {
    let bench = Bench::start(Server::Floor).await;

    bench.spread_then_hot().await;

    // The floor leaves out GraphQL, not the work after the commit: every
    // hold has its release job, as the server schedules it.
    assert_eq!(bench.scheduled_jobs().await, SPREAD_REQUESTS + 1);
}
