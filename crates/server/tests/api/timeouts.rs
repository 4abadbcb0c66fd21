//! HOLDFAST_REQUEST_TIMEOUT: no request over HTTP takes longer, whatever
//! PostgreSQL does; a write must commit a second before it, or it is rolled
//! back; past it the answer is SERVICE_UNAVAILABLE, counted.

use std::time::{Duration, Instant};

use holdfast_domain::entities::Role;
use holdfast_testkit::{TcpProxy, TestDb};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement, TransactionTrait};
use serde_json::json;

use crate::helpers::{TestApp, assert_error, spawn_app_on, spawn_app_with};

const TIMEOUT: Duration = Duration::from_secs(2);
/// What an answer may take beyond the timeout on a busy machine.
const MARGIN: Duration = Duration::from_millis(500);

async fn timeouts_counted(app: &TestApp) -> u64 {
    let metrics = app.metrics().await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("holdfast_request_timeouts_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("holdfast_request_timeouts_total in {metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reserve_that_cannot_commit_in_time_answers_service_unavailable_and_writes_nothing() {
    let app = spawn_app_with(|c| {
        c.request_timeout = TIMEOUT.into();
        // Longer than the request: only its deadline ends the wait.
        c.lock_timeout = Duration::from_secs(20).into();
    })
    .await;
    let ws = app.bootstrap("Acme").await;
    let alice = app.member(&ws, Role::SalesAgent, "Alice").await;
    let (_, plots) = app.project(&ws.admin.token, "Riverside", &["A-1"]).await;
    assert_eq!(timeouts_counted(&app).await, 0);

    let other = Database::connect(&app.test_db.url).await.expect("connect");
    let holder = other.begin().await.expect("begin");
    holder
        .execute_unprepared(&format!(
            "SELECT id FROM property WHERE id = '{}' FOR UPDATE",
            plots[0]
        ))
        .await
        .expect("lock the plot");
    let started = Instant::now();
    let body = app.reserve(&alice.token, &plots[0]).await;
    let took = started.elapsed();
    assert_error(&body, "SERVICE_UNAVAILABLE", 503);
    // A write must commit a second before the deadline.
    assert!(took < TIMEOUT, "answered after {took:?}");
    holder.rollback().await.expect("rollback");

    // The abandoned transaction never committed: the plot was never held.
    let held = app
        .db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT count(*) AS n FROM reservation WHERE property_id = '{}'",
                plots[0]
            ),
        ))
        .await
        .expect("count")
        .expect("a row")
        .try_get::<i64>("", "n")
        .expect("n");
    assert_eq!(held, 0);
    assert_eq!(timeouts_counted(&app).await, 1);

    let body = app.reserve(&alice.token, &plots[0]).await;
    assert!(body.get("errors").is_none(), "{body}");
    app.assert_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_silent_link_to_postgres_every_request_answers_within_the_request_timeout() {
    let link = TcpProxy::postgres().await;
    let test_db = TestDb::new().await;
    let through_link = link.postgres_url(&test_db.url);
    let app = spawn_app_on(test_db, |c| {
        c.deployment.database_url = through_link;
        c.request_timeout = TIMEOUT.into();
        // Longer than the request: only its deadline ends the wait.
        c.db_timeout = Duration::from_secs(20).into();
    })
    .await;
    let ws = app.bootstrap("Acme").await;
    let alice = app.member(&ws, Role::SalesAgent, "Alice").await;
    let (_, plots) = app.project(&ws.admin.token, "Riverside", &["A-1"]).await;
    let me = "{ me { id name } }";
    app.ok(&alice.token, me, json!({})).await;

    link.stall();
    // A read (the caller's session), cut at the deadline; a reserve, cut a
    // second before it (it checks its caller in its own transaction).
    for (query, variables) in [
        (me, json!({})),
        (
            "mutation($id: ID!) { reserveProperty(propertyId: $id) { id } }",
            json!({ "id": plots[0] }),
        ),
    ] {
        let started = Instant::now();
        let body = app.gql(Some(&alice.token), query, variables).await;
        let took = started.elapsed();
        assert_error(&body, "SERVICE_UNAVAILABLE", 503);
        assert_eq!(body["data"], json!(null), "{body}");
        assert!(took < TIMEOUT + MARGIN, "answered after {took:?}");
    }
    assert_eq!(timeouts_counted(&app).await, 2);

    link.resume();
    let started = Instant::now();
    loop {
        let body = app.gql(Some(&alice.token), me, json!({})).await;
        if body.get("errors").is_none() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "not answering after the stall: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.assert_consistent().await;
}
