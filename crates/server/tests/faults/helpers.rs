//! Test support for the fault tests: the real binaries as child processes,
//! a private Redis and a private PostgreSQL cluster that a test may stop and
//! start (never the machine's shared ones), all from holdfast-testkit; a
//! workspace with agents' tokens, and `holdfast-server audit` run against
//! the test's database. Every process started here is killed when its guard
//! drops.

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use holdfast_domain::{Actor, PropertyId, ReservationId};
use holdfast_server::auth::Tokens;
use holdfast_testkit::{Api, PrivateCluster, Process, TEST_SECRET, Workspace};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::Value;

pub use holdfast_testkit::{PrivateRedis, QueueKeys, Target, TcpProxy, eventually, sample};

pub const SERVER_BIN: &str = env!("CARGO_BIN_EXE_holdfast-server");
/// The cron expression of a sweep every second.
pub const EVERY_SECOND: &str = "*/1 * * * * *";

/// The real `holdfast-server` binary, serving on a port of its own.
pub struct Server {
    process: Process,
    api: Api,
}

impl Server {
    /// Starts the server with only these settings (nothing inherited).
    pub async fn start(target: &Target, env: &[(&str, &str)]) -> Server {
        let process = target.server(env).await;
        let api = Api::new(process.addr);
        Server { process, api }
    }

    /// POSTs a GraphQL request: the JSON body, or the transport error.
    pub async fn gql(&self, token: &str, query: &str, variables: Value) -> reqwest::Result<Value> {
        self.api.post(Some(token), query, variables).await
    }

    pub async fn reserve(&self, token: &str, plot: PropertyId) -> reqwest::Result<Value> {
        self.api.reserve_plot(token, plot).await
    }

    /// A reserve that runs on its own (a task may await it while the test
    /// kills this server).
    pub fn reserve_detached(
        &self,
        token: &str,
        plot: PropertyId,
    ) -> impl Future<Output = reqwest::Result<Value>> + Send + 'static {
        let (api, token) = (self.api.clone(), token.to_owned());
        async move { api.reserve_plot(&token, plot).await }
    }

    /// GET: (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        self.api.get(path).await
    }
}

impl Deref for Server {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.process
    }
}

impl DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.process
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
        let ws = Workspace::create(conn, "Acme Homes").await;
        let tokens = Tokens::new(TEST_SECRET.as_bytes());
        let mint = |a: &Actor| {
            let ttl = Duration::from_secs(3600);
            tokens.mint(a.user_id, a.workspace_id, ttl).expect("token")
        };
        let agents = ws.agents(conn, agents).await;
        Scene {
            admin_token: mint(&ws.admin),
            agents: agents.into_iter().map(|a| (a, mint(&a))).collect(),
            plots: ws.plots(conn, ws.project, "P", plots).await,
            admin: ws.admin,
            project: ws.project,
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
