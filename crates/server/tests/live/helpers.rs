//! Test support for live updates: servers (in-process, or the real binary)
//! and a worker sharing one fresh database and one private Redis queue, a
//! WebSocket client that speaks both GraphQL protocols, and Prometheus text
//! parsing. Everything a test starts is stopped, and its Redis keys deleted,
//! when the test ends.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use holdfast_domain::entities::Role;
use holdfast_domain::{Actor, ProjectId, PropertyId, WorkspaceId, directory};
use holdfast_server::auth::Tokens;
use holdfast_server::config::Deployment;
use holdfast_server::{Application, Config};
use holdfast_testkit::{QueueKeys, TestDb};
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const TEST_SECRET: &str = "a-test-secret-that-is-at-least-32-bytes-long";

pub const SUBSCRIPTION: &str = "subscription($p: ID) { propertyChanged(projectId: $p) { \
     property { id code status reservedUntil } previousStatus status at } }";

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
            Config {
                deployment: Deployment {
                    log_filter: "info,holdfast=debug".into(),
                    ..Deployment::default()
                },
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

    pub fn server_config(&self) -> Config {
        Config {
            deployment: Deployment {
                database_url: self.test_db.url.clone(),
                redis_url: holdfast_testkit::redis_url(),
                queue: self.queue.name.clone(),
                ..Deployment::default()
            },
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            jwt_secret: Some(TEST_SECRET.to_owned()),
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
        let addr = app.addr();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        Server {
            addr,
            client: reqwest::Client::new(),
            stop: Some(tx),
        }
    }

    /// The worker, in this process, as the binary starts it.
    pub async fn worker(&self, sweep: &str) -> Worker {
        let config = holdfast_worker::Config::load([
            "holdfast-worker",
            "--database-url",
            &self.test_db.url,
            "--redis-url",
            &holdfast_testkit::redis_url(),
            "--queue",
            &self.queue.name,
            "--sweep-schedule",
            sweep,
            "--metrics-listen",
            "127.0.0.1:0",
            "--worker-concurrency",
            "4",
            "--shutdown-timeout",
            "5s",
        ])
        .expect("worker config");
        let app = holdfast_worker::App::build(config)
            .await
            .expect("build the worker");
        let addr = app.metrics_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        Worker {
            addr,
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    /// A workspace with its admin, a manager, an agent, and a project of
    /// `plots` plots.
    pub async fn workspace(&self, name: &str, plots: usize) -> Team {
        let email = format!("admin@{}.test", name.to_lowercase().replace(' ', "-"));
        let (ws, admin) = directory::create_workspace(&self.db, name, &email, "Ada")
            .await
            .expect("workspace");
        let admin = Actor {
            user_id: admin.id,
            workspace_id: ws.id,
            role: Role::Admin,
        };
        let manager = directory::create_user(&self.db, &admin, "Max", "max@x.test", Role::Manager)
            .await
            .expect("manager");
        let agent = directory::create_user(&self.db, &admin, "Sam", "sam@x.test", Role::SalesAgent)
            .await
            .expect("agent");
        let mut team = Team {
            workspace: ws.id,
            manager: self.token(manager.id, ws.id),
            agent: self.token(agent.id, ws.id),
            admin_actor: admin,
            projects: Vec::new(),
        };
        team.add_project(self, "Riverside", plots).await;
        team
    }

    pub fn token(&self, user: holdfast_domain::UserId, ws: WorkspaceId) -> String {
        self.tokens
            .mint(user, ws, Duration::from_secs(3600))
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
}

impl Team {
    pub async fn add_project(&mut self, world: &World, name: &str, plots: usize) {
        let project = directory::create_project(&world.db, &self.admin_actor, name)
            .await
            .expect("project");
        let mut ids = Vec::with_capacity(plots);
        let codes: Vec<String> = (0..plots).map(|i| format!("P-{i:05}")).collect();
        for chunk in codes.chunks(1000) {
            let added = directory::add_properties(&world.db, &self.admin_actor, project.id, chunk)
                .await
                .expect("plots");
            ids.extend(added.into_iter().map(|p| p.id));
        }
        self.projects.push((project.id, ids));
    }

    pub fn project(&self, i: usize) -> ProjectId {
        self.projects[i].0
    }

    pub fn plot(&self, project: usize, i: usize) -> PropertyId {
        self.projects[project].1[i]
    }
}

/// A running server; stopped on drop.
pub struct Server {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Shuts it down, as SIGTERM would.
    pub fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql/ws", self.addr)
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let resp = self
            .client
            .get(self.url(path))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("GET");
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("body"))
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.1
    }

    /// POSTs a GraphQL request; the body must be JSON.
    pub async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        post_gql(&self.client, self.addr, token, query, variables).await
    }

    /// `data` of a request that must succeed.
    pub async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = self.gql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Reserves; returns the reservation's id.
    pub async fn reserve(&self, token: &str, property: PropertyId) -> String {
        let data = self
            .ok(
                token,
                "mutation($id: ID!) { reserveProperty(propertyId: $id) { id } }",
                json!({ "id": property.to_string() }),
            )
            .await;
        data["reserveProperty"]["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    pub async fn release(&self, token: &str, reservation: &str) {
        self.ok(
            token,
            "mutation($id: ID!) { releaseReservation(reservationId: $id) { id } }",
            json!({ "id": reservation }),
        )
        .await;
    }

    pub async fn convert(&self, token: &str, reservation: &str) {
        self.ok(
            token,
            "mutation($id: ID!) { convertReservation(reservationId: $id) { id } }",
            json!({ "id": reservation }),
        )
        .await;
    }

    /// Waits until this process counts at least `n` live subscriptions (a
    /// subscription starts a moment after its `subscribe` message).
    pub async fn wait_subscribers(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let m = self.metrics().await;
            if sample(&m, "holdfast_subscribers_connected") >= n as f64 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{n} subscribers not connected within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub async fn post_gql(
    client: &reqwest::Client,
    addr: SocketAddr,
    token: &str,
    query: &str,
    variables: Value,
) -> Value {
    let resp = client
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("send the request");
    assert_eq!(resp.status(), 200, "GraphQL answers 200");
    resp.json().await.expect("a JSON body")
}

/// The worker, running in this process; stopped on drop.
pub struct Worker {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Worker {
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.addr))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("body")
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), handle).await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}

/// The real server binary, running with JSON logs; killed on drop. Its log
/// lines are collected.
pub struct BinaryServer {
    pub child: Child,
    pub addr: SocketAddr,
    pub logs: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl BinaryServer {
    pub async fn start(world: &World, extra_env: &[(&str, &str)]) -> BinaryServer {
        let config = world.server_config();
        let mut command = Command::new(env!("CARGO_BIN_EXE_holdfast-server"));
        command
            .arg("serve")
            .env("DATABASE_URL", &config.deployment.database_url)
            .env("REDIS_URL", &config.deployment.redis_url)
            .env("HOLDFAST_LISTEN", "127.0.0.1:0")
            .env("HOLDFAST_JWT_SECRET", TEST_SECRET)
            .env("HOLDFAST_QUEUE", &config.deployment.queue)
            .env("HOLDFAST_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn holdfast-server");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let addr = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.expect("read log") {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && let Some(addr) = v.get("addr").and_then(|a| a.as_str())
                {
                    return addr.parse::<SocketAddr>().expect("addr");
                }
            }
            panic!("holdfast-server exited before listening");
        })
        .await
        .expect("holdfast-server listens within 20 s");
        // Keep draining its logs so that it never blocks on a full pipe.
        let (tx, logs) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if std::env::var_os("TEST_LOG").is_some() {
                    eprintln!("{line}");
                }
                let _ = tx.send(line);
            }
        });
        BinaryServer { child, addr, logs }
    }

    pub fn server(&self) -> Server {
        Server {
            addr: self.addr,
            client: reqwest::Client::new(),
            stop: None,
        }
    }

    /// The server process's resident memory now and at its peak, in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let pid = self.child.id().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
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

/// Which GraphQL-over-WebSocket protocol a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws` (the graphql-ws library's protocol).
    TransportWs,
    /// `graphql-ws` (the older subscriptions-transport-ws protocol).
    LegacyWs,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::TransportWs => "graphql-transport-ws",
            Protocol::LegacyWs => "graphql-ws",
        }
    }
}

/// What a subscriber saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// A payload with data: the change.
    Change(Value),
    /// A payload with errors.
    Errors(Value),
    /// The subscription completed.
    Complete,
    /// The connection closed with this code and reason.
    Closed(u16, String),
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A GraphQL-over-WebSocket client.
pub struct Client {
    pub socket: Socket,
    pub protocol: Protocol,
}

impl Client {
    /// Opens the socket (no `connection_init` yet).
    pub async fn open(server: &Server, protocol: Protocol) -> Client {
        Self::open_url(&server.ws_url(), protocol).await
    }

    pub async fn open_url(url: &str, protocol: Protocol) -> Client {
        Self::open_with_receive_buffer(url, protocol, None).await
    }

    /// Opens the socket with the kernel's receive buffer for it set to
    /// `bytes` (a client that stops reading then blocks the server sooner).
    pub async fn open_with_receive_buffer(
        url: &str,
        protocol: Protocol,
        bytes: Option<u32>,
    ) -> Client {
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            protocol.name().parse().expect("header"),
        );
        let authority = request.uri().authority().expect("host").to_string();
        let addr: SocketAddr = authority.parse().expect("an address");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        if let Some(bytes) = bytes {
            socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
        }
        let (socket, response) = tokio::time::timeout(Duration::from_secs(10), async {
            let stream = socket.connect(addr).await.expect("connect");
            tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await
        })
        .await
        .expect("connect within 10 s")
        .expect("WebSocket handshake");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(protocol.name()),
            "the server speaks the protocol asked for"
        );
        Client { socket, protocol }
    }

    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .expect("send");
    }

    /// Sends `connection_init` with this payload; returns the first answer.
    pub async fn init(&mut self, payload: Value) -> Seen {
        self.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        loop {
            match self.next_raw(Duration::from_secs(10)).await {
                Some(Raw::Text(v)) => match v["type"].as_str() {
                    Some("connection_ack") => return Seen::Complete,
                    Some("connection_error") => return Seen::Errors(v["payload"].clone()),
                    Some("ka") => continue,
                    _ => panic!("unexpected answer to connection_init: {v}"),
                },
                Some(Raw::Closed(code, reason)) => return Seen::Closed(code, reason),
                None => panic!("no answer to connection_init within 10 s"),
            }
        }
    }

    /// A connected client (authenticated with `token`) subscribed to the
    /// changes of `project` (or all).
    pub async fn subscribe(
        server: &Server,
        protocol: Protocol,
        token: &str,
        project: Option<ProjectId>,
    ) -> Client {
        Self::subscribe_with(server, protocol, token, SUBSCRIPTION, project).await
    }

    pub async fn subscribe_with(
        server: &Server,
        protocol: Protocol,
        token: &str,
        query: &str,
        project: Option<ProjectId>,
    ) -> Client {
        let mut client = Client::open(server, protocol).await;
        let ack = client
            .init(json!({ "Authorization": format!("Bearer {token}") }))
            .await;
        assert_eq!(ack, Seen::Complete, "connection_init is acknowledged");
        client.start(query, project).await;
        client
    }

    pub async fn start(&mut self, query: &str, project: Option<ProjectId>) {
        let kind = match self.protocol {
            Protocol::TransportWs => "subscribe",
            Protocol::LegacyWs => "start",
        };
        let variables = json!({ "p": project.map(|p| p.to_string()) });
        self.send(json!({
            "id": "1",
            "type": kind,
            "payload": { "query": query, "variables": variables },
        }))
        .await;
    }

    async fn next_raw(&mut self, within: Duration) -> Option<Raw> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()?;
            match msg {
                Some(Ok(Message::Text(text))) => {
                    let v: Value = serde_json::from_str(&text).expect("JSON message");
                    if v["type"] == "ping" {
                        self.send(json!({ "type": "pong" })).await;
                        continue;
                    }
                    return Some(Raw::Text(v));
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((u16::from(CloseCode::Status), String::new()));
                    return Some(Raw::Closed(code, reason));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Some(Raw::Closed(0, format!("socket error: {e}"))),
                None => return Some(Raw::Closed(0, "connection closed".into())),
            }
        }
    }

    /// The next thing seen within `within`, or None.
    pub async fn next(&mut self, within: Duration) -> Option<Seen> {
        loop {
            match self.next_raw(within).await? {
                Raw::Closed(code, reason) => return Some(Seen::Closed(code, reason)),
                Raw::Text(v) => match v["type"].as_str() {
                    Some("next" | "data") => {
                        let payload = &v["payload"];
                        if payload.get("errors").is_some() {
                            return Some(Seen::Errors(payload["errors"].clone()));
                        }
                        return Some(Seen::Change(payload["data"]["propertyChanged"].clone()));
                    }
                    Some("error") => return Some(Seen::Errors(v["payload"].clone())),
                    Some("complete") => return Some(Seen::Complete),
                    Some("ka") => continue,
                    _ => panic!("unexpected message: {v}"),
                },
            }
        }
    }

    /// The next change; fails on anything else or nothing within `within`.
    pub async fn change(&mut self, within: Duration) -> Value {
        match self.next(within).await {
            Some(Seen::Change(change)) => change,
            other => panic!("expected a change within {within:?}, got {other:?}"),
        }
    }

    /// Asserts nothing arrives for `quiet`.
    pub async fn nothing_for(&mut self, quiet: Duration) {
        if let Some(seen) = self.next(quiet).await {
            panic!("expected nothing, got {seen:?}");
        }
    }
}

enum Raw {
    Text(Value),
    Closed(u16, String),
}

pub use holdfast_testkit::{TcpProxy, eventually, sample};

/// Tests that load both cores (the 500-subscriber burst) run alone among
/// the tests whose assertions are timed (changes within 2 s): the first take
/// this file lock exclusively, the others shared. nextest runs each test in
/// a process of its own, and the kernel drops a dead process's lock.
pub struct CpuLock(#[allow(dead_code)] std::fs::File);

impl CpuLock {
    fn take(exclusive: bool) -> CpuLock {
        let path = std::env::temp_dir().join("holdfast-live-tests.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .expect("open the lock file");
        let locked = if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        };
        locked.expect("lock");
        CpuLock(file)
    }

    /// For a test that loads the CPU.
    pub fn heavy() -> CpuLock {
        Self::take(true)
    }

    /// For a test whose assertions are timed.
    pub fn timed() -> CpuLock {
        Self::take(false)
    }
}
