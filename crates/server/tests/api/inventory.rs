//! The inventory over GraphQL and the command line: prices (exact, and kept
//! by a hold from its start), codes unique without regard to case,
//! withdrawn plots (read everywhere, refused by reserve and the line, sent
//! to live subscribers), archived projects, imports (all or none, errors
//! by line), each operation by role and tenancy; and the import-properties
//! command on 100,000 rows.

use std::process::Command;
use std::time::{Duration, Instant};

use holdfast_domain::entities::Role;
use holdfast_domain::{Actor, directory};
use holdfast_testkit::{Client, Protocol, Seen, TestDb, eventually, sample};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};

use crate::helpers::{TestApp, Workspace, assert_error, spawn_app};

const UPDATE: &str = "mutation($id: ID!, $code: String, $price: Decimal) { \
     updateProperty(propertyId: $id, code: $code, price: $price) { id code price status } }";
const WITHDRAW: &str =
    "mutation($id: ID!) { withdrawProperty(propertyId: $id) { id code status price } }";
const RESTORE: &str =
    "mutation($id: ID!) { restoreProperty(propertyId: $id) { id code status price } }";
const IMPORT: &str = "mutation($p: ID!, $csv: String!) { \
     importProperties(projectId: $p, csv: $csv) { created updated } }";
const JOIN: &str = "mutation($p: ID!) { joinQueue(propertyId: $p) { id status } }";
const COUNTS: &str = "query($p: ID!) { project(id: $p) { totalPlots availablePlots reservedPlots soldPlots \
     properties(status: WITHDRAWN) { nodes { code status } } } }";

/// A workspace with a manager and an agent, and a project with three plots.
struct Team {
    ws: Workspace,
    manager: String,
    agent: String,
    project: String,
    plots: Vec<String>,
}

async fn team(app: &TestApp, name: &str) -> Team {
    let ws = app.bootstrap(name).await;
    let manager = app.member(&ws, Role::Manager, "Max").await.token;
    let agent = app.member(&ws, Role::SalesAgent, "Alice").await.token;
    let (project, plots) = app
        .project(&manager, "Riverside", &["A-1", "A-2", "A-3"])
        .await;
    Team {
        ws,
        manager,
        agent,
        project,
        plots,
    }
}

fn message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn managers_and_admins_run_the_inventory_agents_may_not_and_other_workspaces_see_nothing() {
    let app = spawn_app().await;
    let t = team(&app, "Acme").await;
    let other = team(&app, "Other").await;
    let plot = &t.plots[0];
    let calls: [(&str, Value); 4] = [
        (UPDATE, json!({ "id": plot, "price": "100" })),
        (WITHDRAW, json!({ "id": plot })),
        (RESTORE, json!({ "id": plot })),
        (
            IMPORT,
            json!({ "p": t.project, "csv": "code,price\nN-1,5\n" }),
        ),
    ];
    for (query, vars) in &calls {
        let refused = app.gql(Some(&t.agent), query, vars.clone()).await;
        assert_error(&refused, "FORBIDDEN", 403);
        let elsewhere = app.gql(Some(&other.manager), query, vars.clone()).await;
        assert_error(&elsewhere, "NOT_FOUND", 404);
        let elsewhere = app
            .gql(Some(&other.ws.admin.token), query, vars.clone())
            .await;
        assert_error(&elsewhere, "NOT_FOUND", 404);
    }
    for token in [&t.manager, &t.ws.admin.token] {
        for (query, vars) in &calls {
            let body = app.gql(Some(token), query, vars.clone()).await;
            assert!(body["errors"].is_null(), "{query}: {body}");
        }
    }
    let data = app.ok(&t.manager, COUNTS, json!({ "p": t.project })).await;
    assert_eq!(data["project"]["totalPlots"], 4, "N-1 was imported once");
    app.assert_consistent().await;
}

#[tokio::test]
async fn prices_are_exact_and_a_hold_keeps_the_price_its_plot_had_when_it_began() {
    let app = spawn_app().await;
    let t = team(&app, "Acme").await;
    let plot = &t.plots[0];
    let data = app
        .ok(
            &t.manager,
            UPDATE,
            json!({ "id": plot, "price": "12500000.00" }),
        )
        .await;
    assert_eq!(data["updateProperty"]["price"], "12500000.00");
    // Whole numbers are exact as JSON numbers too; the answer has 2 decimals.
    let data = app
        .ok(&t.manager, UPDATE, json!({ "id": t.plots[1], "price": 7 }))
        .await;
    assert_eq!(data["updateProperty"]["price"], "7.00");
    // The largest price numeric(14, 2) keeps, to the cent.
    let data = app
        .ok(
            &t.manager,
            UPDATE,
            json!({ "id": t.plots[2], "price": "999999999999.99" }),
        )
        .await;
    assert_eq!(data["updateProperty"]["price"], "999999999999.99");

    let held = app
        .ok(
            &t.agent,
            "mutation($id: ID!) { reserveProperty(propertyId: $id) { id priceAtReservation } }",
            json!({ "id": plot }),
        )
        .await;
    assert_eq!(held["reserveProperty"]["priceAtReservation"], "12500000.00");

    let data = app
        .ok(
            &t.manager,
            UPDATE,
            json!({ "id": plot, "price": "13000000.5" }),
        )
        .await;
    assert_eq!(data["updateProperty"]["price"], "13000000.50");
    let read = app
        .ok(
            &t.agent,
            "query($id: ID!) { property(id: $id) { price activeReservation { priceAtReservation } \
               reservations { nodes { priceAtReservation } } } }",
            json!({ "id": plot }),
        )
        .await;
    assert_eq!(read["property"]["price"], "13000000.50");
    assert_eq!(
        read["property"]["activeReservation"]["priceAtReservation"],
        "12500000.00"
    );

    // A null price takes it away; a plot without one gives its holds none.
    let data = app
        .ok(
            &t.manager,
            UPDATE,
            json!({ "id": t.plots[1], "price": null }),
        )
        .await;
    assert_eq!(data["updateProperty"]["price"], Value::Null);
    let held = app
        .ok(
            &t.agent,
            "mutation($id: ID!) { reserveProperty(propertyId: $id) { priceAtReservation } }",
            json!({ "id": t.plots[1] }),
        )
        .await;
    assert_eq!(held["reserveProperty"]["priceAtReservation"], Value::Null);
    app.assert_consistent().await;
}

#[tokio::test]
async fn a_price_that_is_not_a_plain_decimal_with_two_decimals_at_most_is_bad_user_input() {
    let app = spawn_app().await;
    let t = team(&app, "Acme").await;
    let plot = &t.plots[0];
    for (price, why) in [
        (json!("-1"), "is negative"),
        (json!("-0.01"), "is negative"),
        (json!("12.505"), "more than 2 decimals"),
        (json!("12,5"), "is not a decimal"),
        (json!("1e5"), "is not a decimal"),
        (json!("1.5E3"), "is not a decimal"),
        (json!(" 12"), "is not a decimal"),
        (json!(""), "is not a decimal"),
        (json!("1000000000000"), "too large"),
        (json!(12.5), "must be a string"),
        (json!(1e5), "must be a string"),
        (json!(-3), "is negative"),
        (json!(true), "Decimal"),
    ] {
        let body = app
            .gql(
                Some(&t.manager),
                UPDATE,
                json!({ "id": plot, "price": price }),
            )
            .await;
        assert_error(&body, "BAD_USER_INPUT", 400);
        assert!(message(&body).contains(why), "{price}: {body}");
    }
    // Written in the query itself, as GraphiQL users do.
    let body = app
        .gql(
            Some(&t.manager),
            &format!(
                "mutation {{ updateProperty(propertyId: \"{plot}\", price: \"12,5\") {{ price }} }}"
            ),
            json!({}),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", 400);
    assert!(
        message(&body).contains("\"12,5\" is not a decimal"),
        "{body}"
    );
    let read = app
        .ok(
            &t.agent,
            "query($id: ID!) { property(id: $id) { price } }",
            json!({ "id": plot }),
        )
        .await;
    assert_eq!(
        read["property"]["price"],
        Value::Null,
        "nothing was changed"
    );
}

#[tokio::test]
async fn codes_clash_without_regard_to_case_and_the_error_names_the_code() {
    let app = spawn_app().await;
    let t = team(&app, "Acme").await;
    let body = app
        .gql(
            Some(&t.manager),
            UPDATE,
            json!({ "id": t.plots[1], "code": "a-1" }),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", 400);
    assert!(message(&body).contains("\"a-1\""), "{body}");
    let body = app
        .gql(
            Some(&t.manager),
            "mutation($p: ID!) { addProperties(projectId: $p, codes: [\"a-2\"]) { id } }",
            json!({ "p": t.project }),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", 400);
    assert!(message(&body).contains("\"A-2\""), "{body}");
    // A plot's own code in another case, and a new code, are fine.
    let data = app
        .ok(
            &t.manager,
            UPDATE,
            json!({ "id": t.plots[0], "code": "a-1" }),
        )
        .await;
    assert_eq!(data["updateProperty"]["code"], "a-1");
    let data = app
        .ok(
            &t.manager,
            UPDATE,
            json!({ "id": t.plots[1], "code": "B-7" }),
        )
        .await;
    assert_eq!(data["updateProperty"]["code"], "B-7");
}

#[tokio::test]
async fn a_withdrawn_plot_reads_withdrawn_counts_in_total_only_and_cannot_be_reserved_or_queued_for()
 {
    let app = spawn_app().await;
    let t = team(&app, "Acme").await;
    let data = app
        .ok(&t.manager, WITHDRAW, json!({ "id": t.plots[0] }))
        .await;
    assert_eq!(data["withdrawProperty"]["status"], "WITHDRAWN");
    let counts = app.ok(&t.agent, COUNTS, json!({ "p": t.project })).await;
    let project = &counts["project"];
    assert_eq!(
        (
            &project["totalPlots"],
            &project["availablePlots"],
            &project["reservedPlots"],
            &project["soldPlots"]
        ),
        (&json!(3), &json!(2), &json!(0), &json!(0))
    );
    assert_eq!(
        project["properties"]["nodes"],
        json!([{ "code": "A-1", "status": "WITHDRAWN" }])
    );

    for body in [
        app.reserve(&t.agent, &t.plots[0]).await,
        app.gql(Some(&t.agent), JOIN, json!({ "p": t.plots[0] }))
            .await,
    ] {
        assert_error(&body, "PROPERTY_UNAVAILABLE", 409);
        let ext = &body["errors"][0]["extensions"];
        assert_eq!(ext["propertyStatus"], "WITHDRAWN", "{body}");
        assert_eq!(ext["reservedUntil"], Value::Null);
        assert!(message(&body).contains("WITHDRAWN"), "{body}");
    }

    // Twice is harmless; restored, it is on the market again.
    let again = app
        .ok(&t.manager, WITHDRAW, json!({ "id": t.plots[0] }))
        .await;
    assert_eq!(again["withdrawProperty"]["status"], "WITHDRAWN");
    let data = app
        .ok(&t.ws.admin.token, RESTORE, json!({ "id": t.plots[0] }))
        .await;
    assert_eq!(data["restoreProperty"]["status"], "AVAILABLE");
    let held = app.reserve(&t.agent, &t.plots[0]).await;
    let expires = held["data"]["reserveProperty"]["expiresAt"]
        .as_str()
        .expect("reserved")
        .to_owned();

    // A held plot must be released first: told its status and end.
    let body = app
        .gql(Some(&t.manager), WITHDRAW, json!({ "id": t.plots[0] }))
        .await;
    assert_error(&body, "PROPERTY_UNAVAILABLE", 409);
    let ext = &body["errors"][0]["extensions"];
    assert_eq!(ext["propertyStatus"], "RESERVED");
    let until = ext["reservedUntil"].as_str().expect("an end");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(until).expect("time"),
        chrono::DateTime::parse_from_rfc3339(&expires).expect("time")
    );
    assert!(message(&body).contains("RESERVED until"), "{body}");
    // Only a withdrawn plot is restored.
    let body = app
        .gql(Some(&t.manager), RESTORE, json!({ "id": t.plots[0] }))
        .await;
    assert_error(&body, "BAD_USER_INPUT", 400);
    app.assert_consistent().await;
}

#[tokio::test]
async fn withdrawing_and_restoring_reach_property_changed_subscribers() {
    let app = spawn_app().await;
    let t = team(&app, "Acme").await;
    app.ok(
        &t.manager,
        UPDATE,
        json!({ "id": t.plots[1], "price": "450000" }),
    )
    .await;
    let mut board = Client::subscribe_with(
        &app,
        Protocol::TransportWs,
        &t.agent,
        "subscription($p: ID) { propertyChanged(projectId: $p) { \
           property { code status price } previousStatus status } }",
        Some(t.project.parse().expect("id")),
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "a subscriber connected",
        || async { sample(&app.metrics().await, "holdfast_subscribers_connected") >= 1.0 },
    )
    .await;

    app.ok(&t.manager, WITHDRAW, json!({ "id": t.plots[1] }))
        .await;
    let change = board.change(Duration::from_secs(5)).await;
    assert_eq!(
        change,
        json!({ "property": { "code": "A-2", "status": "WITHDRAWN", "price": "450000.00" },
                "previousStatus": "AVAILABLE", "status": "WITHDRAWN" })
    );
    // Withdrawing again changes nothing, so tells nothing.
    app.ok(&t.manager, WITHDRAW, json!({ "id": t.plots[1] }))
        .await;
    app.ok(&t.manager, RESTORE, json!({ "id": t.plots[1] }))
        .await;
    let change = board.change(Duration::from_secs(5)).await;
    assert_eq!(
        (&change["previousStatus"], &change["status"]),
        (&json!("WITHDRAWN"), &json!("AVAILABLE"))
    );
    assert!(!matches!(
        board.next(Duration::from_millis(300)).await,
        Some(Seen::Change(_))
    ));
}

#[tokio::test]
async fn an_archived_projects_plots_cannot_be_reserved_or_queued_for() {
    let app = spawn_app().await;
    let t = team(&app, "Acme").await;
    let held = app.reserve(&t.agent, &t.plots[0]).await;
    assert!(held["errors"].is_null(), "{held}");
    app.ok(
        &t.manager,
        "mutation($id: ID!) { updateProject(projectId: $id, archived: true) { archived } }",
        json!({ "id": t.project }),
    )
    .await;
    for body in [
        app.reserve(&t.agent, &t.plots[1]).await,
        app.gql(Some(&t.agent), JOIN, json!({ "p": t.plots[1] }))
            .await,
    ] {
        assert_error(&body, "PROPERTY_UNAVAILABLE", 409);
        let ext = &body["errors"][0]["extensions"];
        assert_eq!(ext["propertyStatus"], "AVAILABLE", "{body}");
        assert_eq!(ext["projectArchived"], true, "{body}");
        assert!(message(&body).contains("archived"), "{body}");
    }
    // The hold begun before runs its course: its agent sells it.
    let id = held["data"]["reserveProperty"]["id"].as_str().expect("id");
    app.ok(
        &t.agent,
        "mutation($id: ID!) { convertReservation(reservationId: $id) { status } }",
        json!({ "id": id }),
    )
    .await;
    app.assert_consistent().await;
}

fn rows(n: usize, bad: Option<usize>) -> String {
    let mut csv = String::from("code,price\n");
    for i in 1..=n {
        if Some(i) == bad {
            csv.push_str(&format!("R-{i},\"12,5\"\n"));
        } else {
            csv.push_str(&format!("R-{i},{i}.50\n"));
        }
    }
    csv
}

#[tokio::test]
async fn an_import_answers_what_it_created_and_updated_and_a_bad_row_leaves_nothing_behind() {
    let app = spawn_app().await;
    let t = team(&app, "Acme").await;
    let csv = "code,price\na-1,100\nA-2,\nN-1,250000.75\n";
    let data = app
        .ok(&t.manager, IMPORT, json!({ "p": t.project, "csv": csv }))
        .await;
    assert_eq!(
        data["importProperties"],
        json!({ "created": 1, "updated": 1 })
    );
    let read = app
        .ok(
            &t.agent,
            "query($p: ID!) { project(id: $p) { totalPlots properties { nodes { code price } } } }",
            json!({ "p": t.project }),
        )
        .await;
    assert_eq!(
        read["project"]["properties"]["nodes"],
        json!([
            { "code": "A-1", "price": "100.00" },
            { "code": "A-2", "price": null },
            { "code": "A-3", "price": null },
            { "code": "N-1", "price": "250000.75" },
        ])
    );

    // Row 9,999 of 10,000 is refused: nothing of the 9,998 before it stays.
    let body = app
        .gql(
            Some(&t.manager),
            IMPORT,
            json!({ "p": t.project, "csv": rows(10_000, Some(9_999)) }),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", 400);
    assert!(
        message(&body).starts_with("line 10000: price \"12,5\" is not a decimal"),
        "{body}"
    );
    let counts = app.ok(&t.agent, COUNTS, json!({ "p": t.project })).await;
    assert_eq!(counts["project"]["totalPlots"], 4);

    // More rows than a request takes: the command line is for those.
    let body = app
        .gql(
            Some(&t.manager),
            IMPORT,
            json!({ "p": t.project, "csv": rows(10_001, None) }),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", 400);
    assert!(message(&body).contains("import-properties"), "{body}");

    let data = app
        .ok(
            &t.manager,
            IMPORT,
            json!({ "p": t.project, "csv": rows(10_000, None) }),
        )
        .await;
    assert_eq!(
        data["importProperties"],
        json!({ "created": 10_000, "updated": 0 })
    );
    app.assert_consistent().await;
}

const BIN: &str = env!("CARGO_BIN_EXE_holdfast-server");

/// A project in a fresh database, for the command line.
async fn project_in(db: &TestDb) -> (sea_orm::DatabaseConnection, String) {
    let conn = db.connect().await;
    let (ws, admin) = directory::create_workspace(&conn, "Acme", "ada@acme.test", "Ada")
        .await
        .expect("workspace");
    let actor = Actor {
        user_id: admin.id,
        workspace_id: ws.id,
        role: Role::Admin,
    };
    let project = directory::create_project(&conn, &actor, "Riverside")
        .await
        .expect("project");
    (conn, project.id.to_string())
}

async fn import_command(
    db: &TestDb,
    project: &str,
    file: &std::path::Path,
) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .args(["import-properties", "--project-id", project])
        .arg(file);
    tokio::task::spawn_blocking(move || cmd.output().expect("run holdfast-server"))
        .await
        .expect("join")
}

async fn count(conn: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    conn.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect(sql)
        .expect("a row")
        .try_get_by_index(0)
        .expect("a count")
}

#[tokio::test]
async fn the_import_command_takes_100000_rows_in_one_transaction() {
    let db = TestDb::new().await;
    let (conn, project) = project_in(&db).await;
    let dir = std::env::temp_dir().join(format!("holdfast-import-{}", uuid_like()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let file = dir.join("plots.csv");
    std::fs::write(&file, rows(100_000, None)).expect("write the CSV");

    let started = Instant::now();
    let out = import_command(&db, &project, &file).await;
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    println!(
        "import-properties: 100,000 rows in {:.2} s (debug build)",
        took.as_secs_f64()
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(printed, json!({ "created": 100_000, "updated": 0 }));
    assert!(stderr.contains("100%"), "progress on stderr: {stderr}");
    assert_eq!(
        count(
            &conn,
            &format!("SELECT count(*) FROM property WHERE project_id = '{project}'")
        )
        .await,
        100_000
    );
    assert_eq!(
        count(
            &conn,
            &format!(
                "SELECT count(*) FROM property WHERE project_id = '{project}' \
                 AND price = (substring(code FROM 3) || '.50')::numeric AND status = 'AVAILABLE'"
            )
        )
        .await,
        100_000,
        "every row with its own price"
    );

    // The same file again: nothing new, nothing changed.
    let out = import_command(&db, &project, &file).await;
    let printed: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(printed, json!({ "created": 0, "updated": 0 }));

    // A bad row near the end of a larger file: nothing of it stays.
    std::fs::write(&file, rows(120_000, Some(119_990)).replace("R-", "S-")).expect("write");
    let out = import_command(&db, &project, &file).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 119991: price \"12,5\" is not a decimal"),
        "{stderr}"
    );
    assert_eq!(
        count(&conn, "SELECT count(*) FROM property WHERE code LIKE 'S-%'").await,
        0
    );
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        holdfast_domain::audit::audit(&conn)
            .await
            .expect("audit")
            .is_empty()
    );
}

/// A name no other test run uses.
fn uuid_like() -> String {
    holdfast_domain::ProjectId::new().to_string()
}
