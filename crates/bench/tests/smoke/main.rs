//! A smoke run of the load generator, so that it keeps working: the real
//! server in-process on 127.0.0.1:0 over a fresh database, a small project,
//! four agents, spread for 500 reservations and the others for two seconds
//! each (reads with two readers besides), then launch (50 agents on a new
//! project of 10 plots); the floor server of `BENCH_FLOOR` the same way
//! (spread and hot); and the one-statement pgbench script run as plain SQL,
//! for its answers and its per-agent limit under a race. Only correctness is
//! asserted (invariants, one winner in `hot`, each launch plot taken once and
//! no outcome there but reserved and unavailable, every read answered, one
//! release job per hold), never timing. The line behind held plots runs on
//! the real binaries, server and worker (`line.rs`).

mod line;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use holdfast_bench::client::AgentClient;
use holdfast_bench::floor::FloorServer;
use holdfast_bench::invariants::{self, Seen};
use holdfast_bench::outcome::{Op, Outcome};
use holdfast_bench::scenarios::{self, Scenario, Target};
use holdfast_bench::{pgbench, setup};
use holdfast_domain::db::{self, PoolSettings};
use holdfast_server::auth::Tokens;
use holdfast_server::config::{Deployment, Rules};
use holdfast_server::{Application, Config};
use holdfast_testkit::{QueueKeys, TestDb};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use tokio::sync::oneshot;

const SECRET: &str = "a-bench-smoke-secret-that-is-at-least-32-bytes";
/// Agents of every scenario but launch (and reads' reserving agents).
const AGENTS: usize = 4;
/// reads' readers, the agents after the first AGENTS.
const READERS: usize = 2;
/// launch: LAUNCH_AGENTS agents (all of the workspace's) on LAUNCH_PLOTS plots.
const LAUNCH_AGENTS: u32 = 50;
const LAUNCH_PLOTS: u64 = 10;
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
    workspace_id: String,
    project_id: String,
    /// All LAUNCH_AGENTS agents; the other scenarios use the first AGENTS.
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
            jwt_secret: Some(SECRET.into()),
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
        let seeded = setup::seed(&db, PLOTS, LAUNCH_AGENTS).await.expect("seed");
        let clients = agent_clients(&seeded, SECRET, &url);
        Bench {
            db,
            queue_name: queue.name.clone(),
            url,
            workspace_id: seeded.workspace_id,
            project_id: seeded.project_id,
            clients,
            _queue: queue,
            _shutdown: tx,
            _test_db: test_db,
        }
    }

    /// The first AGENTS agents (and READERS readers for reads) on the project.
    async fn target(&self, scenario: Scenario) -> Target {
        let readers = if scenario == Scenario::Reads {
            self.clients[AGENTS..AGENTS + READERS].to_vec()
        } else {
            Vec::new()
        };
        Target {
            clients: self.clients[..AGENTS].to_vec(),
            readers,
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
            AGENTS as u64 - 1
        );
    }

    /// Launch: every agent of the workspace on a new project of LAUNCH_PLOTS
    /// plots; each plot taken once, checked against the database, and the
    /// check itself shown to see a wrong account.
    async fn launch(&self) -> scenarios::RunReport {
        let project_id = setup::add_project(&self.db, &self.workspace_id, "Launch", LAUNCH_PLOTS)
            .await
            .expect("launch project");
        let target = Target {
            clients: self.clients.clone(),
            readers: Vec::new(),
            plots: Arc::new(
                setup::available_plots(&self.db, &project_id)
                    .await
                    .expect("plots"),
            ),
            project_id,
        };
        let since = invariants::db_now(&self.db).await.expect("now");
        let report = scenarios::run(Scenario::Launch, &target, None, None)
            .await
            .expect("launch");
        let broken = invariants::taken_once(&self.db, &target.project_id, since, &report.taken)
            .await
            .expect("taken once");
        assert!(broken.is_empty(), "launch: {broken:?}");
        let all = invariants::check(&self.db, &target.project_id, self.clients.first(), None)
            .await
            .expect("check");
        assert!(all.is_empty(), "launch: broken invariants: {all:?}");

        // The check sees a hold the clients were told of by another agent,
        // and one they were not told of.
        let mut wrong = report.taken.clone();
        wrong[0].1 = wrong[1].1.clone();
        for account in [wrong, report.taken[1..].to_vec()] {
            let broken = invariants::taken_once(&self.db, &target.project_id, since, &account)
                .await
                .expect("taken once");
            assert!(
                !broken.is_empty(),
                "a wrong account of the launch goes unseen"
            );
        }
        report
    }

    /// How many release jobs wait in the queue's scheduled set.
    /// The release jobs waiting in Redis (each hold has one, and a warning).
    async fn scheduled_jobs(&self) -> u64 {
        let set = holdfast_queue::storage_config(&self.queue_name).scheduled_jobs_set();
        let mut redis = redis::Client::open(holdfast_testkit::redis_url())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("redis");
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(set)
            .arg(0)
            .arg(-1)
            .query_async(&mut redis)
            .await
            .expect("ZRANGE");
        ids.iter().filter(|id| id.starts_with("release-")).count() as u64
    }

    /// Runs `scenario` for `seconds`, or for `count` requests when given.
    async fn run(
        &self,
        scenario: Scenario,
        seconds: u64,
        count: Option<u64>,
    ) -> scenarios::RunReport {
        let target = self.target(scenario).await;
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

/// A client for each seeded agent, with a token of an hour signed with
/// `secret`, for the server at `url`.
fn agent_clients(seeded: &setup::Seeded, secret: &str, url: &str) -> Vec<AgentClient> {
    let tokens = Tokens::new(secret.as_bytes());
    let ws = seeded.workspace_id.parse().expect("workspace id");
    seeded
        .agent_ids
        .iter()
        .map(|id| {
            let token = tokens
                .mint(id.parse().expect("user id"), ws, Duration::from_secs(3600))
                .expect("mint");
            AgentClient::new(id, &token, url).expect("client")
        })
        .collect()
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

    let reads = bench.run(Scenario::Reads, 2, None).await;
    assert!(reads.failures.is_empty(), "{:?}", reads.failures);
    assert!(reads.summary.count(Op::Counts, Outcome::Ok) > 0);
    assert!(reads.summary.count(Op::Page, Outcome::Ok) > 0);

    let launch = bench.launch().await;
    assert!(launch.failures.is_empty(), "{:?}", launch.failures);
    let s = &launch.summary;
    assert_eq!(
        s.count(Op::Reserve, Outcome::Ok),
        LAUNCH_PLOTS,
        "{}",
        s.render()
    );
    assert_eq!(
        s.count(Op::Reserve, Outcome::Ok) + s.count(Op::Reserve, Outcome::Unavailable),
        s.total.count,
        "no outcome but reserved and unavailable:\n{}",
        s.render()
    );
    assert_eq!(launch.taken.len() as u64, LAUNCH_PLOTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_server_reserves_as_the_server_does_with_a_release_job_per_hold() {
    let bench = Bench::start(Server::Floor).await;

    bench.spread_then_hot().await;

    // The floor leaves out GraphQL, not the work after the commit: every
    // hold has its release job, as the server schedules it.
    assert_eq!(bench.scheduled_jobs().await, SPREAD_REQUESTS + 1);
}

/// One answer of the one-statement script.
#[derive(Debug)]
struct Answer {
    outcome: String,
    property_status: Option<String>,
    held: Option<i64>,
    reserved_until: Option<chrono::DateTime<chrono::Utc>>,
    reservation: Option<uuid::Uuid>,
}

async fn answer(conn: &impl ConnectionTrait, sql: &str) -> Answer {
    let row = conn
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect("the one-statement script runs")
        .expect("it answers one row");
    Answer {
        outcome: row.try_get("", "outcome").expect("outcome"),
        property_status: row.try_get("", "property_status").expect("property_status"),
        held: row.try_get("", "held").expect("held"),
        reserved_until: row.try_get("", "reserved_until").expect("reserved_until"),
        reservation: row.try_get("", "reservation_id").expect("reservation_id"),
    }
}

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql).await.expect(sql);
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect(sql)
        .expect("a row")
        .try_get("", "n")
        .expect("n")
}

/// The limit of the reserve ratio (pgbench/reserve-one-statement.sql), run as
/// the plain SQL pgbench would send: it reserves a free plot in one
/// statement, says why when it does not, changes nothing then, and keeps the
/// per-agent limit when reserves of one agent wait on each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_statement_limit_reserves_says_why_not_and_keeps_the_limit_under_a_race() {
    let test_db = TestDb::new().await;
    let db = db::connect(&test_db.url, &PoolSettings::default())
        .await
        .expect("connect");
    let seeded = setup::seed(&db, 20, 4).await.expect("seed");
    pgbench::prepare(&db, &seeded.project_id, &seeded.agent_ids)
        .await
        .expect("prepare");
    let ws = seeded.workspace_id.clone();
    // Agent n is seeded.agent_ids[n - 1]; each run draws the next plot.
    let one = |agent: u32, max_active: u32| {
        pgbench::statement(
            pgbench::ONE_STATEMENT_SCRIPT,
            &[
                ("ws", ws.clone()),
                ("agent", agent.to_string()),
                ("ttl_secs", "3600".to_owned()),
                ("max_active", max_active.to_string()),
            ],
        )
    };
    let plot = |n: u32| format!("(SELECT property_id FROM bench_plot WHERE n = {n})");

    // A free plot: reserved, with its hold and the plot's new state.
    let a = answer(&db, &one(1, 0)).await;
    assert_eq!(a.outcome, "RESERVED", "{a:?}");
    assert!(a.reservation.is_some());
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT count(*) AS n FROM property WHERE id = {} AND status = 'RESERVED' \
                 AND reserved_by_id = '{}'",
                plot(1),
                seeded.agent_ids[0]
            )
        )
        .await,
        1
    );

    // The same plot again: unavailable, held until when.
    exec(&db, "ALTER SEQUENCE bench_plot_seq RESTART").await;
    let a = answer(&db, &one(2, 0)).await;
    assert_eq!(a.outcome, "PROPERTY_UNAVAILABLE", "{a:?}");
    assert_eq!(a.property_status.as_deref(), Some("RESERVED"));
    assert!(a.reserved_until.is_some() && a.reservation.is_none());

    // A limit of 2: two holds, then the limit, with the count that decided.
    for (held, outcome) in [
        (0, "RESERVED"),
        (1, "RESERVED"),
        (2, "RESERVATION_LIMIT_REACHED"),
    ] {
        let a = answer(&db, &one(3, 2)).await;
        assert_eq!((a.held, a.outcome.as_str()), (Some(held), outcome), "{a:?}");
    }

    // The race: agent 4 reserves in a transaction left open, so it keeps the
    // agent's lock; two more reserves of agent 4 on other plots wait for it.
    // Once it commits, each counts what committed before it: one more hold,
    // then the limit. (A count inside the statement would read the snapshot
    // from before the wait, count 0 twice, and make 3 holds.)
    let txn = db.begin().await.expect("begin");
    let first = answer(&txn, &one(4, 2)).await;
    assert_eq!(first.outcome, "RESERVED", "{first:?}");
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let (db, sql) = (db.clone(), one(4, 2));
            tokio::spawn(async move { answer(&db, &sql).await })
        })
        .collect();
    let mut waiting = 0;
    for _ in 0..100 {
        waiting = count(
            &db,
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .await;
        if waiting == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(waiting, 2, "both racers wait for the agent's lock");
    txn.commit().await.expect("commit");
    let mut raced = Vec::new();
    for racer in racers {
        let a = racer.await.expect("racer");
        raced.push((a.held, a.outcome));
    }
    raced.sort();
    assert_eq!(
        raced,
        [
            (Some(1), "RESERVED".to_owned()),
            (Some(2), "RESERVATION_LIMIT_REACHED".to_owned())
        ]
    );
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT count(*) AS n FROM reservation WHERE agent_id = '{}' AND status = 'ACTIVE'",
                seeded.agent_ids[3]
            )
        )
        .await,
        2,
        "agent 4 holds its limit, no more"
    );
    let broken = invariants::check(&db, &seeded.project_id, None, None)
        .await
        .expect("check");
    assert!(broken.is_empty(), "{broken:?}");

    // Why not, for the rest: a sold plot, a plot not in the workspace, a
    // lapsed hold (a takeover, left to the full transaction), a deactivated
    // caller, a suspended workspace. None of them writes anything.
    let before = count(&db, "SELECT count(*) AS n FROM reservation").await;
    exec(&db, "SELECT setval('bench_plot_seq', 10)").await;
    exec(
        &db,
        &format!(
            "UPDATE property SET status = 'SOLD' WHERE id = {}",
            plot(11)
        ),
    )
    .await;
    let a = answer(&db, &one(1, 0)).await;
    assert_eq!(
        (a.outcome.as_str(), a.property_status.as_deref()),
        ("PROPERTY_UNAVAILABLE", Some("SOLD"))
    );
    exec(
        &db,
        "UPDATE bench_plot SET property_id = gen_random_uuid() WHERE n = 12",
    )
    .await;
    assert_eq!(answer(&db, &one(1, 0)).await.outcome, "NOT_FOUND");
    exec(
        &db,
        &format!(
            "UPDATE reservation SET created_at = now() - interval '2 hours', \
             expires_at = now() - interval '1 hour' WHERE property_id = {p}; \
             UPDATE property SET reserved_until = now() - interval '1 hour' WHERE id = {p}",
            p = plot(1)
        ),
    )
    .await;
    exec(&db, "ALTER SEQUENCE bench_plot_seq RESTART").await;
    assert_eq!(answer(&db, &one(2, 0)).await.outcome, "TAKEOVER");
    exec(
        &db,
        &format!(
            "UPDATE app_user SET active = false WHERE id = '{}'",
            seeded.agent_ids[1]
        ),
    )
    .await;
    assert_eq!(answer(&db, &one(2, 0)).await.outcome, "UNAUTHENTICATED");
    exec(&db, "UPDATE workspace SET status = 'SUSPENDED'").await;
    assert_eq!(answer(&db, &one(3, 0)).await.outcome, "FORBIDDEN");
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM reservation").await,
        before
    );
}

/// The server's own statement (pgbench/reserve-server-statement.sql), run as
/// the plain SQL pgbench would send: `rules.reserve` in one round trip
/// reserves a free plot, and the same plot again is unavailable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_statement_script_reserves_a_free_plot_and_refuses_a_held_one() {
    let test_db = TestDb::new().await;
    let db = db::connect(&test_db.url, &PoolSettings::default())
        .await
        .expect("connect");
    let seeded = setup::seed(&db, 5, 2).await.expect("seed");
    pgbench::prepare(&db, &seeded.project_id, &seeded.agent_ids)
        .await
        .expect("prepare");
    let sql = |agent: u32| {
        pgbench::statement(
            pgbench::SERVER_STATEMENT_SCRIPT,
            &[
                ("ws", seeded.workspace_id.clone()),
                ("agent", agent.to_string()),
                ("ttl_secs", "3600".to_owned()),
                ("max_active", "0".to_owned()),
            ],
        )
    };
    let outcome = |answer: String| -> String {
        let v: serde_json::Value = serde_json::from_str(&answer).expect("json");
        v["outcome"].as_str().expect("an outcome").to_owned()
    };
    let run = |sql: String| {
        let db = db.clone();
        async move {
            db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
                .await
                .expect("the server's statement runs")
                .expect("one row")
                .try_get::<String>("", "answer")
                .expect("answer")
        }
    };
    assert_eq!(outcome(run(sql(1)).await), "reserved");
    assert_eq!(
        count(
            &db,
            &format!(
                "SELECT count(*) AS n FROM property WHERE status = 'RESERVED' AND reserved_by_id = '{}'",
                seeded.agent_ids[0]
            )
        )
        .await,
        1
    );
    exec(&db, "ALTER SEQUENCE bench_plot_seq RESTART").await;
    assert_eq!(outcome(run(sql(2)).await), "unavailable");
}
