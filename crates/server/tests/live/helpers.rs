//! Test support for live updates: servers (in-process, or the real binary)
//! and a worker sharing one fresh database and one private Redis queue
//! (the WebSocket client that speaks both GraphQL protocols is
//! holdfast-testkit's). Everything a test starts is stopped, and its Redis
//! keys deleted, when the test ends.

use std::net::SocketAddr;
use std::ops::Deref;
use std::time::Duration;

use holdfast_domain::{Actor, ProjectId, PropertyId, WorkspaceId};
use holdfast_server::auth::Tokens;
use holdfast_server::config::Deployment;
use holdfast_server::{Application, Config};
use holdfast_testkit::{Api, Process, QueueKeys, Running, TEST_SECRET, Target, TestDb, Workspace};
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};

pub use holdfast_testkit::{Client, Protocol, SUBSCRIPTION, Seen, TcpProxy, eventually, sample};

/// A database and a queue that several servers and a worker share.
pub struct World {
    pub db: DatabaseConnection,
    /// The test's queue; its keys are deleted when the world is dropped.
    pub queue: QueueKeys,
    pub tokens: Tokens,
    // Dropped last: the database goes away after everything stopped using it.
    pub test_db: TestDb,
}

impl World {
    pub async fn new() -> World {
        if std::env::var_os("TEST_LOG").is_some() {
            let log_filter = "info,holdfast=debug".into();
            let deployment = Deployment {
                log_filter,
                ..Deployment::default()
            };
            Config {
                deployment,
                ..Config::default()
            }
            .init_logging();
        }
        let test_db = TestDb::new().await;
        let db = test_db.connect().await;
        World {
            db,
            queue: QueueKeys::new(),
            tokens: Tokens::new(TEST_SECRET.as_bytes()),
            test_db,
        }
    }

    /// Where this world's servers and worker are pointed.
    pub fn target(&self) -> Target {
        Target {
            database_url: self.test_db.url.clone(),
            redis_url: self.queue.redis_url.clone(),
            queue: self.queue.name.clone(),
        }
    }

    pub fn server_config(&self) -> Config {
        let target = self.target();
        Config {
            deployment: Deployment {
                database_url: target.database_url,
                redis_url: target.redis_url,
                queue: target.queue,
                ..Deployment::default()
            },
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            jwt_secret: Some(TEST_SECRET.into()),
            db_max_connections: 10,
            ..Config::default()
        }
    }

    /// A server in this process, on this world's database and queue.
    pub async fn server(&self) -> Server {
        self.server_with(|_| {}).await
    }

    pub async fn server_with(&self, adjust: impl FnOnce(&mut Config)) -> Server {
        let mut config = self.server_config();
        adjust(&mut config);
        let app = Application::build(&config).await.expect("build the app");
        Server {
            api: Api::new(app.addr()),
            app: Some(Running::spawn(|stop| app.run_until(stop))),
        }
    }

    /// The worker, in this process, as the binary starts it.
    pub async fn worker(&self, sweep: &str) -> Worker {
        self.worker_with(sweep, &[]).await
    }

    /// The worker with these flags too.
    pub async fn worker_with(&self, sweep: &str, extra: &[&str]) -> Worker {
        let target = self.target();
        let mut args = vec![
            "holdfast-worker",
            "--database-url",
            &target.database_url,
            "--redis-url",
            &target.redis_url,
            "--queue",
            &target.queue,
            "--sweep-schedule",
            sweep,
            "--metrics-listen",
            "127.0.0.1:0",
            "--worker-concurrency",
            "4",
            "--shutdown-timeout",
            "5s",
        ];
        args.extend(extra);
        let config = holdfast_worker::Config::load(args).expect("worker config");
        let app = holdfast_worker::App::build(config)
            .await
            .expect("build the worker");
        Worker {
            api: Api::new(app.metrics_addr()),
            app: Running::spawn(|stop| app.run_until(stop)),
        }
    }

    /// A workspace (holdfast-testkit's) with the tokens of its manager and
    /// of an agent, and a project of `plots` plots.
    pub async fn workspace(&self, name: &str, plots: usize) -> Team {
        let ws = Workspace::create(&self.db, name).await;
        let agent = ws.agent(&self.db).await;
        let plots = ws.plots(&self.db, ws.project, "P", plots).await;
        Team {
            workspace: ws.id,
            manager: self.token(&ws.manager),
            agent: self.token(&agent),
            projects: vec![(ws.project, plots)],
            admin_actor: ws.admin,
            fixture: ws,
        }
    }

    pub fn token(&self, actor: &Actor) -> String {
        let ttl = Duration::from_secs(3600);
        self.tokens
            .mint(actor.user_id, actor.workspace_id, ttl)
            .expect("mint a token")
    }
}

/// A workspace's people (as bearer tokens) and projects.
pub struct Team {
    pub workspace: WorkspaceId,
    pub manager: String,
    pub agent: String,
    pub admin_actor: Actor,
    /// Each project and its plots, in code order.
    pub projects: Vec<(ProjectId, Vec<PropertyId>)>,
    fixture: Workspace,
}

impl Team {
    pub async fn add_project(&mut self, world: &World, name: &str, plots: usize) {
        let project = self.fixture.add_project(&world.db, name).await;
        let plots = self.fixture.plots(&world.db, project, "P", plots).await;
        self.projects.push((project, plots));
    }

    pub fn project(&self, i: usize) -> ProjectId {
        self.projects[i].0
    }

    /// Another agent of the workspace.
    pub async fn another_agent(&self, world: &World) -> Actor {
        self.fixture.agent(&world.db).await
    }

    pub fn plot(&self, project: usize, i: usize) -> PropertyId {
        self.projects[project].1[i]
    }
}

/// A running server and a client of it; an in-process one is stopped on
/// drop.
pub struct Server {
    api: Api,
    app: Option<Running<std::io::Result<()>>>,
}

impl Deref for Server {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Server {
    /// Shuts it down, as SIGTERM would.
    pub fn shut_down(&mut self) {
        if let Some(app) = &mut self.app {
            app.shut_down();
        }
    }

    /// POSTs a GraphQL request; the body must be JSON.
    pub async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        self.api.gql(Some(token), query, variables).await
    }

    /// Reserves; returns the reservation's id.
    pub async fn reserve(&self, token: &str, property: PropertyId) -> String {
        let query = "mutation($id: ID!) { reserveProperty(propertyId: $id) { id } }";
        let data = self
            .ok(token, query, json!({ "id": property.to_string() }))
            .await;
        let id = data["reserveProperty"]["id"].as_str().expect("id");
        id.to_owned()
    }

    pub async fn release(&self, token: &str, reservation: &str) {
        let query = "mutation($id: ID!) { releaseReservation(reservationId: $id) { id } }";
        self.ok(token, query, json!({ "id": reservation })).await;
    }

    pub async fn convert(&self, token: &str, reservation: &str) {
        let query = "mutation($id: ID!) { convertReservation(reservationId: $id) { id } }";
        self.ok(token, query, json!({ "id": reservation })).await;
    }

    /// Waits until this process counts at least `n` live subscriptions (a
    /// subscription starts a moment after its `subscribe` message).
    pub async fn wait_subscribers(&self, n: usize) {
        eventually(
            Duration::from_secs(30),
            &format!("{n} subscribers connected"),
            || async {
                sample(&self.metrics().await, "holdfast_subscribers_connected") >= n as f64
            },
        )
        .await;
    }
}

/// The worker, running in this process; stopped on drop.
pub struct Worker {
    api: Api,
    app: Running<anyhow::Result<()>>,
}

impl Worker {
    pub async fn metrics(&self) -> String {
        self.api.metrics().await
    }

    pub async fn stop(self) {
        self.app.stop(Duration::from_secs(10)).await;
    }
}

/// The real server binary, running with JSON logs (kept in `logs`); killed
/// on drop.
pub struct BinaryServer(Process);

impl Deref for BinaryServer {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.0
    }
}

impl BinaryServer {
    pub async fn start(world: &World, extra_env: &[(&str, &str)]) -> BinaryServer {
        BinaryServer(world.target().server(extra_env).await)
    }

    pub fn server(&self) -> Server {
        Server {
            api: Api::new(self.addr),
            app: None,
        }
    }

    /// The server process's resident memory now and at its peak, in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}
