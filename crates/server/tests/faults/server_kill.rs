//! The server killed with SIGKILL mid-request: the reservation either
//! committed or did not, and the client's retry of the same reserve on the
//! restarted server gets a clear answer.

use std::time::{Duration, Instant};

use holdfast_domain::{PropertyId, UserId};
use holdfast_testkit::TestDb;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use serde_json::{Value, json};

use crate::helpers::{QueueKeys, Scene, Server, Target, assert_audit_clean, code_of, count};

fn target(db: &TestDb, keys: &QueueKeys) -> Target {
    Target {
        database_url: db.url.clone(),
        redis_url: keys.redis_url.clone(),
        queue: keys.name.clone(),
    }
}

/// Who holds the plot now, per the database.
async fn holder(conn: &DatabaseConnection, plot: PropertyId) -> Option<String> {
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!("SELECT reserved_by_id::text AS holder FROM property WHERE id = '{plot}'"),
        ))
        .await
        .expect("query")
        .expect("the plot");
    row.try_get("", "holder").expect("holder")
}

/// Waits until PostgreSQL has seen every connection of the killed server
/// go, so that its transactions are over (committed or rolled back) and the
/// database says what stands.
async fn wait_for_the_dead_server_s_sessions_to_end(conn: &DatabaseConnection) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(
        conn,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
           AND application_name = 'holdfast-server'",
    )
    .await
        > 0
    {
        assert!(
            Instant::now() < deadline,
            "PostgreSQL still runs the killed server's sessions after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The retry of a reserve whose first answer was lost: success, or
/// PROPERTY_UNAVAILABLE because this very agent already holds the plot (as
/// `reservations(agentId:)` shows). Returns whether the first try had
/// committed.
async fn retry_gets_a_clear_answer(
    server: &Server,
    admin_token: &str,
    (agent, token): (UserId, &str),
    plot: PropertyId,
) -> bool {
    let body = server.reserve(token, plot).await.expect("an answer");
    match code_of(&body) {
        None => {
            assert_eq!(
                body["data"]["reserveProperty"]["status"], "ACTIVE",
                "{body}"
            );
            false
        }
        Some("PROPERTY_UNAVAILABLE") => {
            assert_eq!(
                body["errors"][0]["extensions"]["propertyStatus"], "RESERVED",
                "{body}"
            );
            let data: Value = server
                .gql(
                    admin_token,
                    "query($a: ID!, $p: ID!) { reservations(agentId: $a, propertyId: $p, status: ACTIVE) \
                       { nodes { id agent { id } } } }",
                    json!({ "a": agent.to_string(), "p": plot.to_string() }),
                )
                .await
                .expect("an answer");
            let nodes = data["data"]["reservations"]["nodes"]
                .as_array()
                .unwrap_or_else(|| panic!("a list: {data}"));
            assert_eq!(nodes.len(), 1, "the agent's own hold from before: {data}");
            assert_eq!(nodes[0]["agent"]["id"], json!(agent.to_string()));
            true
        }
        other => panic!("the retry got {other:?}: {body}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reserve_in_flight_when_the_server_is_killed_is_not_half_written_and_its_retry_succeeds()
{
    let db = TestDb::new().await;
    let conn = db.connect().await;
    let scene = Scene::new(&conn, 1, 1).await;
    let keys = QueueKeys::new();
    let target = target(&db, &keys);
    let mut server = Server::start(&target, &[]).await;
    let (agent, token) = scene.agents[0].clone();
    let plot = scene.plots[0];

    // Hold the plot's row, so that the reserve waits inside the server's
    // transaction; kill the server there. (Its first try, the statement
    // alone in one round trip, gives way after 50 ms of waiting, and the
    // server sends it again inside BEGIN ... COMMIT, without rules.at_once.)
    let blocker = conn.begin().await.expect("begin");
    blocker
        .execute_unprepared(&format!(
            "SELECT 1 FROM property WHERE id = '{plot}' FOR UPDATE"
        ))
        .await
        .expect("lock the plot");
    let in_flight = tokio::spawn(server.reserve_detached(&token, plot));
    let waiting = Instant::now();
    while count(
        &conn,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
           AND application_name = 'holdfast-server' AND wait_event_type = 'Lock' \
           AND query NOT LIKE '%rules.at_once%'",
    )
    .await
        == 0
    {
        assert!(
            waiting.elapsed() < Duration::from_secs(10),
            "the reserve never waited on the lock in a transaction"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill().await;
    let cut = in_flight.await.expect("join");
    assert!(cut.is_err(), "the client saw the connection cut: {cut:?}");
    blocker.rollback().await.expect("unlock");
    wait_for_the_dead_server_s_sessions_to_end(&conn).await;

    // The transaction died with its connection: nothing was written.
    let written = count(
        &conn,
        &format!("SELECT count(*) AS n FROM reservation WHERE property_id = '{plot}'"),
    )
    .await;
    assert_eq!(written, 0, "no reservation row");
    assert_eq!(holder(&conn, plot).await, None, "and the plot is free");

    let restarted = Server::start(&target, &[]).await;
    let committed = retry_gets_a_clear_answer(
        &restarted,
        &scene.admin_token,
        (agent.user_id, &token),
        plot,
    )
    .await;
    assert!(!committed, "the retry made the reservation");
    server.logs.assert_no_panic("the killed server");
    assert_audit_clean(&db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserves_cut_by_a_server_killed_under_load_committed_or_not_and_every_retry_gets_a_clear_answer()
 {
    const AGENTS: usize = 8;
    const PLOTS_EACH: usize = 200;
    let db = TestDb::new().await;
    let conn = db.connect().await;
    let scene = Scene::new(&conn, AGENTS, AGENTS * PLOTS_EACH).await;
    let keys = QueueKeys::new();
    let target = target(&db, &keys);
    let no_limit = [("HOLDFAST_MAX_ACTIVE_PER_AGENT", "0")];
    let mut server = Server::start(&target, &no_limit).await;

    // Each agent reserves its own plots one after the other until a
    // request fails; that request is the one cut by the kill.
    let mut load = Vec::new();
    for (i, (_, token)) in scene.agents.iter().enumerate() {
        let requests: Vec<_> = scene.plots[i * PLOTS_EACH..(i + 1) * PLOTS_EACH]
            .iter()
            .map(|plot| (*plot, server.reserve_detached(token, *plot)))
            .collect();
        load.push(tokio::spawn(async move {
            for (plot, request) in requests {
                // An answer, even an error (a busy machine may time out a
                // request), was seen by the client; a transport error is the
                // request the kill cut.
                if request.await.is_err() {
                    return Some(plot);
                }
            }
            None
        }));
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    server.kill().await;
    let mut cut = Vec::new();
    for (i, agent) in load.into_iter().enumerate() {
        if let Some(plot) = agent.await.expect("join") {
            cut.push((i, plot));
        }
    }
    assert!(!cut.is_empty(), "the kill cut some requests");
    wait_for_the_dead_server_s_sessions_to_end(&conn).await;

    // Whether each cut request had committed, per the database; then the
    // retry on a new server must agree.
    let restarted = Server::start(&target, &no_limit).await;
    let mut committed_before = 0;
    for (i, plot) in &cut {
        let (agent, token) = &scene.agents[*i];
        let held = holder(&conn, *plot).await;
        let had_committed = held.is_some();
        if let Some(held) = held {
            assert_eq!(held, agent.user_id.to_string(), "held by its own agent");
        }
        let retry = retry_gets_a_clear_answer(
            &restarted,
            &scene.admin_token,
            (agent.user_id, token),
            *plot,
        )
        .await;
        assert_eq!(
            retry, had_committed,
            "the retry's answer matches the database"
        );
        committed_before += usize::from(had_committed);
    }
    println!(
        "{} reserves cut by the kill: {committed_before} had committed (retry: PROPERTY_UNAVAILABLE, held by the same agent), {} had not (retry: reserved)",
        cut.len(),
        cut.len() - committed_before
    );
    server.logs.assert_no_panic("the killed server");
    assert_audit_clean(&db.url).await;
}
