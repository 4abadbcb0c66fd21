//! The built binary: bootstrap (and its refusal to duplicate a workspace),
//! token (and its refusal of a lifetime of zero), seed-demo, migrate, print-schema, bad
//! settings, a graceful stop on SIGTERM, and the operators' workspace and
//! user switches.

use std::process::{Command, Output};
use std::time::Duration;

use holdfast_testkit::{Process, QueueKeys, TestDb};
use sea_orm::{ConnectionTrait, Database, TransactionTrait};
use serde_json::{Value, json};

use crate::helpers::{TEST_SECRET, TestApp, assert_error, spawn_app, spawn_app_on};

const BIN: &str = env!("CARGO_BIN_EXE_holdfast-server");

/// The binary with only the settings given here (nothing inherited), for
/// commands that write nothing to Redis.
fn server(db: &TestDb) -> Command {
    server_on_queue(db, &holdfast_testkit::unique_queue())
}

/// The same, on a queue whose keys the test deletes (`QueueKeys`).
fn server_on_queue(db: &TestDb, queue: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("DATABASE_URL", &db.url)
        .env("HOLDFAST_JWT_SECRET", TEST_SECRET)
        .env("HOLDFAST_QUEUE", queue)
        .env("REDIS_URL", holdfast_testkit::redis_url())
        .env("RUST_LOG", "warn");
    cmd
}

async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("run holdfast-server"))
        .await
        .expect("join")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

#[tokio::test]
async fn bootstrap_prints_the_workspace_the_admin_and_a_working_token() {
    let db = TestDb::new().await;
    let mut cmd = server(&db);
    cmd.args([
        "bootstrap",
        "--workspace",
        "Acme Homes",
        "--admin-email",
        "ada@acme.test",
    ]);
    let out = stdout(&run(cmd).await);
    let printed: Value = serde_json::from_str(out.trim()).expect("one JSON object");
    for key in ["workspaceId", "userId", "token"] {
        assert!(printed[key].is_string(), "{key} missing: {printed}");
    }

    // `token` mints another one for the same user.
    let mut cmd = server(&db);
    cmd.args([
        "token",
        "--user-id",
        printed["userId"].as_str().expect("id"),
        "--ttl",
        "1h",
    ]);
    let second = stdout(&run(cmd).await).trim().to_owned();

    let app = spawn_app_on(db, |_| {}).await;
    for token in [printed["token"].as_str().expect("token"), second.as_str()] {
        let data = app.ok(token, "{ me { id name role } }", json!({})).await;
        assert_eq!(data["me"]["id"], printed["userId"]);
        assert_eq!(data["me"]["role"], json!("ADMIN"));
        assert_eq!(data["me"]["name"], json!("ada"));
    }
}

#[tokio::test]
async fn a_second_bootstrap_of_the_same_workspace_and_admin_is_refused_unless_asked() {
    let db = TestDb::new().await;
    let bootstrap = |workspace: &str, email: &str, more: &[&str]| {
        let mut cmd = server(&db);
        cmd.args([
            "bootstrap",
            "--workspace",
            workspace,
            "--admin-email",
            email,
        ]);
        cmd.args(more);
        run(cmd)
    };
    let first: Value =
        serde_json::from_str(stdout(&bootstrap("Acme Homes", "ada@acme.test", &[]).await).trim())
            .expect("JSON");

    // The same name (in any case) and admin email: refused, naming what it
    // would duplicate and how to get a token instead.
    let again = bootstrap("ACME homes", "Ada@acme.test", &[]).await;
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert!(again.stdout.is_empty());
    let said = String::from_utf8_lossy(&again.stderr);
    for part in [
        first["workspaceId"].as_str().expect("id"),
        "token --user-id",
        "--allow-duplicate",
    ] {
        assert!(said.contains(part), "{part:?} not in {said}");
    }

    // Another admin, another name, or asked for: made.
    for (name, email, more) in [
        ("Acme Homes", "bo@acme.test", &[][..]),
        ("Acme Towers", "ada@acme.test", &[][..]),
        ("Acme Homes", "ada@acme.test", &["--allow-duplicate"][..]),
    ] {
        let made: Value =
            serde_json::from_str(stdout(&bootstrap(name, email, more).await).trim()).expect("JSON");
        assert_ne!(made["workspaceId"], first["workspaceId"]);
    }
    let conn = Database::connect(&db.url).await.expect("connect");
    let count = conn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) AS n FROM workspace",
        ))
        .await
        .expect("count")
        .expect("a row")
        .try_get::<i64>("", "n")
        .expect("n");
    assert_eq!(count, 4);
}

#[tokio::test]
async fn token_refuses_a_lifetime_of_zero_or_less() {
    let db = TestDb::new().await;
    let mut cmd = server(&db);
    cmd.args([
        "bootstrap",
        "--workspace",
        "Acme",
        "--admin-email",
        "ada@acme.test",
    ]);
    let printed: Value = serde_json::from_str(stdout(&run(cmd).await).trim()).expect("JSON");
    for ttl in ["0s", "0", "-1h"] {
        let mut cmd = server(&db);
        // `--ttl=...`, so that "-1h" reaches the value's check rather than
        // being taken for a flag.
        let user = printed["userId"].as_str().expect("id");
        cmd.args(["token", "--user-id", user, &format!("--ttl={ttl}")]);
        let out = run(cmd).await;
        assert_eq!(out.status.code(), Some(2), "--ttl {ttl}: {out:?}");
        assert!(out.stdout.is_empty(), "--ttl {ttl} printed a token");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("--ttl"), "{said}");
    }
}

#[tokio::test]
async fn seed_demo_twice_reuses_the_workspace_and_its_agent_token_reserves_a_plot() {
    let db = TestDb::new().await;
    // The demo's holds schedule their jobs: on a queue the test cleans up.
    let queue = QueueKeys::new();
    let first = stdout(
        &run({
            let mut c = server_on_queue(&db, &queue.name);
            c.arg("seed-demo");
            c
        })
        .await,
    );
    let second = stdout(
        &run({
            let mut c = server_on_queue(&db, &queue.name);
            c.arg("seed-demo");
            c
        })
        .await,
    );
    let header = |out: &str| out.lines().next().expect("a first line").to_owned();
    assert_eq!(
        header(&first),
        header(&second),
        "the same workspace and project"
    );
    assert!(first.contains("with 50 plots"), "{first}");

    // The newcomer's path: paste the printed header, list plots, reserve one.
    let token = second
        .split("\"Authorization\": \"Bearer ")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a token to paste")
        .to_owned();
    let app = spawn_app_on(db, |_| {}).await;
    let data = app
        .ok(
            &token,
            "{ me { role } projects { nodes { name availablePlots properties(first: 5, status: AVAILABLE) { nodes { id code } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["me"]["role"], json!("SALES_AGENT"));
    let projects = data["projects"]["nodes"].as_array().expect("projects");
    assert_eq!(projects.len(), 1, "seeding twice made one project: {data}");
    // Three of the 50 plots are the demo agents' holds for their buyers.
    assert_eq!(projects[0]["availablePlots"], json!(47));
    let holds = app
        .ok(
            &token,
            "{ me { activeReservations { buyer { name } note } } }",
            json!({}),
        )
        .await;
    let holds = holds["me"]["activeReservations"].as_array().expect("holds");
    assert!(
        !holds.is_empty() && holds.iter().all(|h| h["buyer"]["name"].is_string()),
        "the demo agent holds plots for buyers: {holds:?}"
    );
    let plot = projects[0]["properties"]["nodes"][0]["id"]
        .as_str()
        .expect("a plot");
    let body = app.reserve(&token, plot).await;
    assert_eq!(
        body["data"]["reserveProperty"]["status"],
        json!("ACTIVE"),
        "{body}"
    );
}

#[tokio::test]
async fn migrate_creates_a_missing_database_and_running_it_twice_is_harmless() {
    let name = format!("hf_migrate_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{}/{name}", holdfast_testkit::server_url());
    for _ in 0..2 {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "warn")
            .arg("migrate");
        stdout(&run(cmd).await);
    }
    let db = Database::connect(&url).await.expect("the database exists");
    db.execute_unprepared("SELECT count(*) FROM reservation")
        .await
        .expect("the tables exist");
    db.close().await.ok();
    let admin = Database::connect(format!("{}/postgres", holdfast_testkit::server_url()))
        .await
        .expect("connect");
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .expect("drop");
}

#[tokio::test]
async fn print_schema_prints_the_sdl() {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().arg("print-schema");
    let out = stdout(&run(cmd).await);
    assert_eq!(out, holdfast_server::graphql::sdl());
}

/// Environment, flags, and the setting the error must name.
type BadSetting = (
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
    &'static str,
);

#[tokio::test]
async fn a_bad_setting_exits_2_with_one_line_naming_it() {
    let cases: &[BadSetting] = &[
        (
            &[("HOLDFAST_RESERVATION_TTL", "banana")],
            &[],
            "HOLDFAST_RESERVATION_TTL",
        ),
        (
            &[],
            &["--max-extensions", "many"],
            "HOLDFAST_MAX_EXTENSIONS",
        ),
        (&[("REDIS_URL", "http://nope")], &[], "REDIS_URL"),
        (&[("DATABASE_URL", "mysql://x")], &[], "DATABASE_URL"),
        (&[("HOLDFAST_LISTEN", "nowhere")], &[], "HOLDFAST_LISTEN"),
        (&[("HOLDFAST_ENV", "staging")], &[], "HOLDFAST_ENV"),
        (
            &[("HOLDFAST_REQUEST_TIMEOUT", "soon")],
            &[],
            "HOLDFAST_REQUEST_TIMEOUT",
        ),
        // A second of it is kept for the work after a commit.
        (
            &[],
            &["--request-timeout", "1s"],
            "HOLDFAST_REQUEST_TIMEOUT (--request-timeout)",
        ),
        (
            &[("HOLDFAST_ENV", "production")],
            &[],
            "HOLDFAST_JWT_SECRET",
        ),
        (
            &[
                ("HOLDFAST_ENV", "production"),
                ("HOLDFAST_JWT_SECRET", "short"),
            ],
            &[],
            "HOLDFAST_JWT_SECRET",
        ),
    ];
    for (env, args, setting) in cases {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .envs(env.iter().copied())
            .args(*args)
            .arg("print-schema");
        let out = run(cmd).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?} {args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(setting), "{setting} named: {stderr}");
        assert!(out.stdout.is_empty(), "nothing on stdout");
    }
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish_then_exits_0() {
    let db = TestDb::new().await;
    // A workspace, an agent and a plot, straight through the domain.
    let conn = db.connect().await;
    let (ws, admin) =
        holdfast_domain::directory::create_workspace(&conn, "Acme", "a@acme.test", "Ada")
            .await
            .expect("workspace");
    let actor = holdfast_domain::Actor {
        user_id: admin.id,
        workspace_id: ws.id,
        role: admin.role,
    };
    let project = holdfast_domain::directory::create_project(&conn, &actor, "Riverside")
        .await
        .expect("project");
    let plots =
        holdfast_domain::directory::add_properties(&conn, &actor, project.id, &["A-1".to_owned()])
            .await
            .expect("plots");
    let tokens = holdfast_server::auth::Tokens::new(TEST_SECRET.as_bytes());
    let token = tokens
        .mint(admin.id, ws.id, Duration::from_secs(600))
        .expect("token");

    let queue = QueueKeys::new();
    let mut cmd = server_on_queue(&db, &queue.name);
    cmd.env("HOLDFAST_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .env("HOLDFAST_LOG_FORMAT", "json");
    let mut server = Process::start(cmd.into(), "holdfast-server").await;
    let addr = server.addr;

    // Hold the plot's row so the reservation waits inside the server.
    let other = Database::connect(&db.url).await.expect("connect");
    let txn = other.begin().await.expect("begin");
    txn.execute_unprepared(&format!(
        "SELECT id FROM property WHERE id = '{}' FOR UPDATE",
        plots[0].id
    ))
    .await
    .expect("lock");
    let client = reqwest::Client::new();
    let in_flight = tokio::spawn({
        let url = format!("http://{addr}/graphql");
        let plot = plots[0].id.to_string();
        async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({
                    "query": "mutation($id: ID!) { reserveProperty(propertyId: $id) { status } }",
                    "variables": { "id": plot },
                }))
                .send()
                .await
                .expect("the request in flight gets an answer")
                .json::<Value>()
                .await
                .expect("json")
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = server.pid().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    txn.rollback().await.expect("release the row");

    let body = in_flight.await.expect("join");
    assert_eq!(
        body["data"]["reserveProperty"]["status"],
        json!("ACTIVE"),
        "{body}"
    );
    let status = server.wait(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0), "exit 0 after SIGTERM");
}

/// What an operator command printed, run against the app's database.
async fn operate(app: &TestApp, args: &[&str]) -> String {
    let mut cmd = server(&app.test_db);
    cmd.args(args);
    stdout(&run(cmd).await)
}

const ME: &str = "{ me { id } }";

#[tokio::test]
async fn workspace_suspend_and_resume_are_idempotent_and_refuse_its_users_meanwhile() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let id = ws.id.to_string();
    let label = format!("workspace Acme ({id})");
    let steps = [
        ("suspend", format!("{label} suspended; it was active")),
        ("suspend", format!("{label} already suspended")),
    ];
    for (action, said) in &steps {
        let out = operate(&app, &["workspace", action, "--workspace-id", &id]).await;
        assert_eq!(out.trim_end(), said.as_str());
        let body = app.gql(Some(&ws.admin.token), ME, json!({})).await;
        assert_error(&body, "FORBIDDEN", 403);
    }
    let steps = [
        ("resume", format!("{label} resumed; it was suspended")),
        ("resume", format!("{label} already active")),
    ];
    for (action, said) in &steps {
        let out = operate(&app, &["workspace", action, "--workspace-id", &id]).await;
        assert_eq!(out.trim_end(), said.as_str());
        app.ok(&ws.admin.token, ME, json!({})).await;
    }

    let mut cmd = server(&app.test_db);
    let missing = uuid::Uuid::new_v4().to_string();
    cmd.args(["workspace", "suspend", "--workspace-id", &missing]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("no workspace with id {missing}")),
        "{stderr}"
    );
}

#[tokio::test]
async fn user_deactivate_and_activate_are_idempotent_and_say_when_the_last_admin_goes() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let alice = app
        .member(&ws, holdfast_domain::entities::Role::SalesAgent, "Alice")
        .await;
    let label = format!(
        "user Alice <alice@example.com> ({}) of workspace Acme ({})",
        alice.id, ws.id
    );
    let deactivate = ["user", "deactivate", "--user-id", &alice.id];
    let activate = ["user", "activate", "--user-id", &alice.id];

    let out = operate(&app, &deactivate).await;
    assert_eq!(
        out.trim_end(),
        format!("{label} deactivated; they were active")
    );
    assert_error(
        &app.gql(Some(&alice.token), ME, json!({})).await,
        "UNAUTHENTICATED",
        401,
    );
    let out = operate(&app, &deactivate).await;
    assert_eq!(out.trim_end(), format!("{label} already deactivated"));
    let out = operate(&app, &activate).await;
    assert_eq!(
        out.trim_end(),
        format!("{label} activated; they were deactivated")
    );
    app.ok(&alice.token, ME, json!({})).await;
    let out = operate(&app, &activate).await;
    assert_eq!(out.trim_end(), format!("{label} already active"));

    // Operators may deactivate the last active admin, and are told so.
    let out = operate(&app, &["user", "deactivate", "--user-id", &ws.admin.id]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].ends_with("deactivated; they were active"), "{out}");
    assert!(
        lines[1].contains("last active admin of workspace Acme")
            && lines[1].contains(&format!("user activate --user-id {}", ws.admin.id)),
        "{out}"
    );
    assert_error(
        &app.gql(Some(&ws.admin.token), ME, json!({})).await,
        "UNAUTHENTICATED",
        401,
    );
    let out = operate(&app, &["user", "activate", "--user-id", &ws.admin.id]).await;
    assert_eq!(out.lines().count(), 1, "{out}");
    app.ok(&ws.admin.token, ME, json!({})).await;
}
