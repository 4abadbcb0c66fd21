//! Test support for the fault tests: the real binaries as child processes, a
//! private Redis and a private PostgreSQL cluster that a test may stop and
//! start (never the machine's shared ones), a workspace made straight through
//! the domain, and `holdfast-server audit` run against the test's database.
//! Every process started here is killed when its guard drops.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use holdfast_domain::entities::Role;
use holdfast_domain::{Actor, PropertyId, ReservationId, directory};
use holdfast_server::auth::Tokens;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

pub const TEST_SECRET: &str = "a-test-secret-that-is-at-least-32-bytes-long";
pub const SERVER_BIN: &str = env!("CARGO_BIN_EXE_holdfast-server");
/// The cron expression of a sweep every second.
pub const EVERY_SECOND: &str = "*/1 * * * * *";

/// `holdfast-worker` lives in another package: Cargo builds it into the
/// same target directory as this test's executable (`.../target/<profile>/deps/x`).
pub fn worker_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps");
    let bin = profile_dir.join("holdfast-worker");
    assert!(
        bin.is_file(),
        "{} is not built: run `cargo build -p holdfast-worker` (or `cargo nextest run --workspace`, which builds it)",
        bin.display()
    );
    bin
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Every line a child process wrote, kept for assertions (no panic logged).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<String>>>);

impl Logs {
    fn push(&self, line: String) {
        if std::env::var_os("TEST_LOG").is_some() {
            println!("{line}");
        }
        self.0.lock().expect("logs").push(line);
    }

    pub fn count(&self, needle: &str) -> usize {
        self.0
            .lock()
            .expect("logs")
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    pub fn assert_no_panic(&self, who: &str) {
        let logs = self.0.lock().expect("logs");
        let panics: Vec<&String> = logs.iter().filter(|l| l.contains("panicked")).collect();
        assert!(panics.is_empty(), "{who} panicked: {panics:#?}");
    }
}

fn drain(
    stream: impl AsyncRead + Unpin + Send + 'static,
    logs: Logs,
    found: Arc<Mutex<Option<tokio::sync::oneshot::Sender<SocketAddr>>>>,
    find: fn(&str) -> Option<SocketAddr>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = find(&line)
                && let Some(tx) = found.lock().expect("found").take()
            {
                let _ = tx.send(addr);
            }
            logs.push(line);
        }
    });
}

/// Starts `cmd`, keeps its output, and waits (20 s at most) for the address
/// it logs.
async fn spawn_listening(
    mut cmd: Command,
    what: &str,
    find: fn(&str) -> Option<SocketAddr>,
) -> (Child, SocketAddr, Logs) {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("start {what}: {e}"));
    let logs = Logs::default();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let found = Arc::new(Mutex::new(Some(tx)));
    drain(
        child.stdout.take().expect("stdout"),
        logs.clone(),
        found.clone(),
        find,
    );
    drain(
        child.stderr.take().expect("stderr"),
        logs.clone(),
        found,
        find,
    );
    let addr = match tokio::time::timeout(Duration::from_secs(20), rx).await {
        Ok(Ok(addr)) => addr,
        _ => panic!(
            "{what} did not log its address within 20 s: {:#?}",
            logs.0.lock().expect("logs")
        ),
    };
    (child, addr, logs)
}

/// SIGKILL, and wait until the process is gone.
async fn kill(child: &mut Child) {
    child.kill().await.expect("SIGKILL");
}

/// SIGTERM (graceful stop), waiting up to 20 s for the exit status.
async fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().expect("running").to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill -TERM");
    assert!(status.success());
    tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits within 20 s of SIGTERM")
        .expect("wait")
}

/// What the server and the worker are pointed at.
#[derive(Clone, Debug)]
pub struct Target {
    pub database_url: String,
    pub redis_url: String,
    pub queue: String,
}

/// The real `holdfast-server` binary, serving on a port of its own.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub logs: Logs,
    pub client: reqwest::Client,
}

impl Server {
    /// Starts the server with only these settings (nothing inherited).
    pub async fn start(target: &Target, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(SERVER_BIN);
        cmd.env_clear()
            .env("DATABASE_URL", &target.database_url)
            .env("REDIS_URL", &target.redis_url)
            .env("HOLDFAST_QUEUE", &target.queue)
            .env("HOLDFAST_JWT_SECRET", TEST_SECRET)
            .env("HOLDFAST_LISTEN", "127.0.0.1:0")
            .env("HOLDFAST_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            // The machine's PostgreSQL is shared by every test running at
            // once: keep this process's share small.
            .env("HOLDFAST_DB_MAX_CONNECTIONS", "10")
            .envs(env.iter().copied());
        let (child, addr, logs) = spawn_listening(cmd, "holdfast-server", |line| {
            line.split("listening on http://")
                .nth(1)?
                .split('/')
                .next()?
                .parse()
                .ok()
        })
        .await;
        Server {
            child,
            addr,
            logs,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .expect("client"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs a GraphQL request: the JSON body, or the transport error.
    pub async fn gql(&self, token: &str, query: &str, variables: Value) -> reqwest::Result<Value> {
        self.client
            .post(self.url("/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await?
            .json()
            .await
    }

    pub async fn reserve(&self, token: &str, plot: PropertyId) -> reqwest::Result<Value> {
        self.reserve_detached(token, plot).await
    }

    /// A reserve that runs on its own (a task may await it while the test
    /// kills this server).
    pub fn reserve_detached(
        &self,
        token: &str,
        plot: PropertyId,
    ) -> impl Future<Output = reqwest::Result<Value>> + Send + 'static {
        let request = self.client.post(self.url("/graphql")).bearer_auth(token).json(&json!({
            "query": "mutation($id: ID!) { reserveProperty(propertyId: $id) { id status expiresAt } }",
            "variables": { "id": plot.to_string() },
        }));
        async move { request.send().await?.json().await }
    }

    /// GET: (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self.client.get(self.url(path)).send().await.expect("GET");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    pub async fn kill(&mut self) {
        kill(&mut self.child).await;
    }

    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        terminate(&mut self.child).await
    }
}

/// The real `holdfast-worker` binary.
pub struct Worker {
    child: Child,
    pub addr: SocketAddr,
    pub logs: Logs,
}

impl Worker {
    /// Starts a worker with this sweep schedule (`off` for none) and extra flags.
    pub async fn start(target: &Target, sweep: &str, extra: &[&str]) -> Worker {
        let mut cmd = Command::new(worker_bin());
        cmd.env_clear()
            .env("HOLDFAST_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .args(["--database-url", &target.database_url])
            .args(["--redis-url", &target.redis_url])
            .args(["--queue", &target.queue])
            .args(["--sweep-schedule", sweep])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .args(["--shutdown-timeout", "10s"])
            // A pool of concurrency + 4 connections, on a shared PostgreSQL.
            .args(["--worker-concurrency", "6"])
            .args(extra);
        let (child, addr, logs) = spawn_listening(cmd, "holdfast-worker", |line| {
            let v: Value = serde_json::from_str(line).ok()?;
            let addr = v.get("addr").or_else(|| v.get("fields")?.get("addr"))?;
            addr.as_str()?.parse().ok()
        })
        .await;
        Worker { child, addr, logs }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    pub async fn kill(&mut self) {
        kill(&mut self.child).await;
    }

    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        terminate(&mut self.child).await
    }
}

/// A Redis server of this test's own, on a free port, with no persistence:
/// stopping it loses every job in it, as a crash of a cache-only Redis would.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub async fn start() -> PrivateRedis {
        let mut redis = PrivateRedis {
            port: free_port(),
            child: None,
        };
        redis.start_again().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on its port; returns once it answers PING.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start redis-server (is it installed and on PATH?)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers().await {
            assert!(
                Instant::now() < deadline,
                "the private redis-server on port {} did not answer within 10 s",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn answers(&self) -> bool {
        let ping = async {
            let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
            conn.write_all(b"PING\r\n").await?;
            let mut buf = [0u8; 7];
            conn.read_exact(&mut buf).await?;
            Ok::<bool, std::io::Error>(&buf == b"+PONG\r\n")
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(1), ping).await,
            Ok(Ok(true))
        )
    }

    /// Kills it (SIGKILL): every connection drops, every job in it is lost.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(&mut child).await;
        }
    }
}

/// Where a private PostgreSQL cluster lives; the tools run on it.
#[derive(Clone, Debug)]
struct ClusterSpec {
    port: u16,
    dir: PathBuf,
    as_postgres: bool,
}

const PG_BIN_DIRS: &[&str] = &["/usr/local/bin", "/usr/lib/postgresql/15/bin"];

fn pg_tool(name: &str) -> String {
    PG_BIN_DIRS
        .iter()
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.exists())
        .map_or_else(|| name.to_owned(), |p| p.to_string_lossy().into_owned())
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

impl ClusterSpec {
    fn data_dir(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    fn command(&self, program: &str) -> std::process::Command {
        if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--", program]);
            c
        } else {
            std::process::Command::new(program)
        }
    }

    /// Runs a PostgreSQL tool (as `postgres` when we are root): Err with its
    /// output when it fails.
    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let out = self
            .command(program)
            .args(args)
            .current_dir(&self.dir)
            .output()
            .map_err(|e| format!("cannot run {program}: {e} (is PostgreSQL installed?)"))?;
        if out.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        Err(format!(
            "{program} {args:?} failed ({}):\n{}\n{}\n{log}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    fn start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.to_string_lossy()
        );
        let log = self.dir.join("server.log").to_string_lossy().into_owned();
        let data = self.data_dir();
        self.run(
            &pg_tool("pg_ctl"),
            &[
                "-D", &data, "-o", &options, "-l", &log, "-w", "-t", "30", "start",
            ],
        )
    }

    fn stop(&self) -> Result<(), String> {
        let data = self.data_dir();
        self.run(
            &pg_tool("pg_ctl"),
            &["-D", &data, "-m", "immediate", "-w", "-t", "30", "stop"],
        )
    }
}

/// A PostgreSQL cluster of this test's own (initdb in a temporary directory,
/// its own port), which the test may stop and start; stopped and removed on
/// drop. PostgreSQL refuses to run as root, so as root the cluster belongs
/// to, and runs as, `postgres`.
pub struct PrivateCluster {
    spec: ClusterSpec,
}

impl PrivateCluster {
    /// initdb and start; panics with PostgreSQL's own words if either fails.
    pub async fn start() -> PrivateCluster {
        let dir = std::env::temp_dir().join(format!("hf-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the cluster's directory");
        let spec = ClusterSpec {
            port: free_port(),
            dir,
            as_postgres: running_as_root(),
        };
        // From here on, Drop removes the directory whatever happens.
        let cluster = PrivateCluster { spec: spec.clone() };
        let made = tokio::task::spawn_blocking(move || {
            if spec.as_postgres {
                let dir = spec.dir.to_string_lossy().into_owned();
                let chown = std::process::Command::new("chown")
                    .args(["-R", "postgres:postgres", &dir])
                    .status()
                    .map_err(|e| format!("chown: {e}"))?;
                if !chown.success() {
                    return Err(format!("chown postgres {dir} failed"));
                }
            }
            let data = spec.data_dir();
            spec.run(
                &pg_tool("initdb"),
                &[
                    "-D",
                    &data,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-N",
                    "-E",
                    "UTF8",
                ],
            )?;
            spec.start()
        })
        .await
        .expect("join");
        if let Err(e) = made {
            panic!("cannot start a private PostgreSQL cluster: {e}");
        }
        cluster
    }

    /// A URL of a database of this cluster.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}",
            self.spec.port
        )
    }

    /// Starts the cluster again; returns once it accepts connections.
    pub async fn start_again(&self) {
        let spec = self.spec.clone();
        let started = tokio::task::spawn_blocking(move || spec.start())
            .await
            .expect("join");
        if let Err(e) = started {
            panic!("the private PostgreSQL cluster did not start again: {e}");
        }
    }

    /// Stops it the hard way (`-m immediate`: connections dropped, no
    /// checkpoint, crash recovery on the next start), as a crash would.
    pub async fn stop(&self) {
        let spec = self.spec.clone();
        let stopped = tokio::task::spawn_blocking(move || spec.stop())
            .await
            .expect("join");
        if let Err(e) = stopped {
            panic!("cannot stop the private PostgreSQL cluster: {e}");
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if self.spec.dir.join("data").join("postmaster.pid").exists() {
            let _ = self.spec.stop();
        }
        let _ = std::fs::remove_dir_all(&self.spec.dir);
    }
}

/// A private cluster with a migrated `holdfast` database, migrated by the
/// `holdfast-server migrate` binary.
pub async fn private_cluster() -> PrivateCluster {
    let cluster = PrivateCluster::start().await;
    let url = cluster.url("holdfast");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(SERVER_BIN)
            .env_clear()
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "warn")
            .arg("migrate")
            .output()
            .expect("run holdfast-server migrate")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "migrate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    cluster
}

pub use holdfast_testkit::QueueKeys;

/// A workspace with an admin, a project, agents with tokens, and plots.
pub struct Scene {
    pub admin: Actor,
    pub admin_token: String,
    pub project: holdfast_domain::ProjectId,
    pub agents: Vec<(Actor, String)>,
    pub plots: Vec<PropertyId>,
}

impl Scene {
    pub async fn new(conn: &DatabaseConnection, agents: usize, plots: usize) -> Scene {
        let (ws, admin) = directory::create_workspace(conn, "Acme Homes", "admin@acme.test", "Ada")
            .await
            .expect("workspace");
        let tokens = Tokens::new(TEST_SECRET.as_bytes());
        let mint = |user, ws| {
            tokens
                .mint(user, ws, Duration::from_secs(3600))
                .expect("token")
        };
        let admin = Actor {
            user_id: admin.id,
            workspace_id: ws.id,
            role: Role::Admin,
        };
        let admin_token = mint(admin.user_id, ws.id);
        let project = directory::create_project(conn, &admin, "Seaview")
            .await
            .expect("project")
            .id;
        let mut out = Vec::with_capacity(agents);
        for i in 0..agents {
            let user = directory::create_user(
                conn,
                &admin,
                &format!("Agent {i}"),
                &format!("agent{i}@acme.test"),
                Role::SalesAgent,
            )
            .await
            .expect("agent");
            let actor = Actor {
                user_id: user.id,
                workspace_id: ws.id,
                role: Role::SalesAgent,
            };
            out.push((actor, mint(user.id, ws.id)));
        }
        let codes: Vec<String> = (0..plots).map(|i| format!("P-{i:05}")).collect();
        let mut ids = Vec::with_capacity(plots);
        for chunk in codes.chunks(1000) {
            let added = directory::add_properties(conn, &admin, project, chunk)
                .await
                .expect("plots");
            ids.extend(added.into_iter().map(|p| p.id));
        }
        Scene {
            admin,
            admin_token,
            project,
            agents: out,
            plots: ids,
        }
    }

    /// `n` holds of the first agent, on new plots, that lapsed a second ago,
    /// written in SQL in one statement (as if nothing released them in time).
    pub async fn lapsed_holds(&self, conn: &DatabaseConnection, n: usize) -> Vec<ReservationId> {
        let agent = self.agents[0].0.user_id;
        let ws = self.admin.workspace_id;
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let rows = conn
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                format!(
                    "WITH p AS ( \
                       INSERT INTO property (id, workspace_id, project_id, code, status, reserved_by_id, reserved_until, updated_at) \
                       SELECT gen_random_uuid(), '{ws}', '{project}', 'L-{tag}-' || g, 'RESERVED', '{agent}', \
                              now() - interval '1 second', now() - interval '1 hour' \
                       FROM generate_series(1, {n}) g RETURNING id, reserved_until) \
                     INSERT INTO reservation (id, workspace_id, property_id, agent_id, status, created_at, expires_at) \
                     SELECT gen_random_uuid(), '{ws}', p.id, '{agent}', 'ACTIVE', now() - interval '1 hour', p.reserved_until \
                     FROM p RETURNING id",
                    project = self.project,
                ),
            ))
            .await
            .expect("lapsed holds");
        rows.iter()
            .map(|r| {
                let id: uuid::Uuid = r.try_get("", "id").expect("id");
                ReservationId::from(id)
            })
            .collect()
    }
}

/// Records in a table of the test's own every time a reservation ends, so
/// that a test can show each one ended exactly once.
pub async fn log_every_end(conn: &DatabaseConnection) {
    conn.execute_unprepared(
        "CREATE TABLE test_end_log (reservation_id uuid NOT NULL, status text NOT NULL, \
           end_source text, at timestamptz NOT NULL DEFAULT clock_timestamp()); \
         CREATE FUNCTION test_log_end() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN \
           IF NEW.status <> 'ACTIVE' AND (OLD.status IS DISTINCT FROM NEW.status \
                                          OR OLD.ended_at IS DISTINCT FROM NEW.ended_at) THEN \
             INSERT INTO test_end_log (reservation_id, status, end_source) \
             VALUES (NEW.id, NEW.status, NEW.end_source); \
           END IF; \
           RETURN NEW; \
         END $$; \
         CREATE TRIGGER test_log_end AFTER UPDATE ON reservation \
           FOR EACH ROW EXECUTE FUNCTION test_log_end();",
    )
    .await
    .expect("install the end log");
}

/// (reservations ended, reservations ended more than once) per the end log.
pub async fn ends(conn: &DatabaseConnection) -> (i64, i64) {
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(DISTINCT reservation_id) AS ended, \
               (SELECT count(*) FROM (SELECT 1 FROM test_end_log GROUP BY reservation_id \
                                      HAVING count(*) > 1) t) AS twice \
             FROM test_end_log",
        ))
        .await
        .expect("read the end log")
        .expect("a row");
    (
        row.try_get("", "ended").expect("ended"),
        row.try_get("", "twice").expect("twice"),
    )
}

/// A number from one SQL query (`SELECT ... AS n`).
pub async fn count(conn: &DatabaseConnection, sql: &str) -> i64 {
    conn.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect(sql)
        .expect("a row")
        .try_get("", "n")
        .expect("n")
}

/// `holdfast-server audit` on this database: (exit code, stdout + stderr).
pub async fn audit_binary(database_url: &str) -> (Option<i32>, String) {
    let url = database_url.to_owned();
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(SERVER_BIN)
            .env_clear()
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "warn")
            .arg("audit")
            .output()
            .expect("run holdfast-server audit")
    });
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("audit finishes within 30 s")
        .expect("join");
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Every fault test ends here: the audit binary finds every invariant holds.
pub async fn assert_audit_clean(database_url: &str) {
    let (code, out) = audit_binary(database_url).await;
    assert_eq!(code, Some(0), "holdfast-server audit: {out}");
}

/// `extensions.code` of the first error, if any.
pub fn code_of(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"].as_str()
}

/// Reserves `plot`, retrying answers that say "try again" (a server that
/// has just got its database back may still be refilling its pool), until
/// it succeeds or `within` passes; returns the reservation's id.
pub async fn reserve_when_ready(
    server: &Server,
    token: &str,
    plot: PropertyId,
    within: Duration,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let body = server.reserve(token, plot).await.expect("an answer");
        if let Some(id) = body["data"]["reserveProperty"]["id"].as_str() {
            return id.to_owned();
        }
        assert!(
            matches!(code_of(&body), Some("SERVICE_UNAVAILABLE" | "BUSY")),
            "{body}"
        );
        assert!(
            Instant::now() < deadline,
            "no reservation within {within:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub use holdfast_testkit::{TcpProxy, eventually, sample};
