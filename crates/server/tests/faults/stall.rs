//! The link between the server and PostgreSQL goes silent for 20 s under
//! load (a black hole: no byte in either direction, nothing closed or
//! reset). Every request still answers within HOLDFAST_REQUEST_TIMEOUT; a
//! transaction frozen mid-way by the stall, holding a plot's row lock, is
//! ended by PostgreSQL after idle_in_transaction_session_timeout, and the
//! worker (which reaches PostgreSQL directly) releases the lapsed hold it
//! kept locked at its next sweep; once the link is back everything recovers
//! and the audit is clean.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use holdfast_domain::db::IDLE_IN_TRANSACTION_TIMEOUT;
use holdfast_testkit::TestDb;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use serde_json::{Value, json};

use crate::helpers::{
    EVERY_SECOND, QueueKeys, Scene, Server, Target, TcpProxy, assert_audit_clean, code_of, count,
    eventually, reserve_when_ready, sample,
};
use crate::postgres::{BACK, DOWN, Outcome, RESTORING, UP, agent_load};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// What an answer may take beyond the request timeout on two busy cores
/// (the client's own round trip included).
const MARGIN: Duration = Duration::from_secs(1);
const STALL: Duration = Duration::from_secs(20);
/// The worker's sweep period (`EVERY_SECOND`).
const SWEEP_PERIOD: Duration = Duration::from_secs(1);

/// One value from one SQL query on the test's direct connection.
async fn one<T: sea_orm::TryGetable>(conn: &DatabaseConnection, sql: &str) -> T {
    conn.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect(sql)
        .expect("a row")
        .try_get("", "v")
        .expect("v")
}

/// The oldest transaction of the server left idle (its client silent), in
/// seconds, and how many there are.
async fn frozen_server_transactions(conn: &DatabaseConnection) -> (f64, i64) {
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - state_change)), 0)::float8 AS age, \
                    count(*) AS n \
             FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'holdfast-server' \
               AND state LIKE 'idle in transaction%'",
        ))
        .await
        .expect("pg_stat_activity")
        .expect("a row");
    (
        row.try_get("", "age").expect("age"),
        row.try_get("", "n").expect("n"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_link_to_postgres_bounds_every_answer_and_frees_every_plot_a_frozen_transaction_held()
 {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    // Six agents with ten plots each for the load; a seventh, with the plot
    // whose release the stall freezes; one more plot for the end.
    let scene = Scene::new(&conn, 7, 62).await;
    let keys = QueueKeys::new();
    let link = TcpProxy::postgres().await;
    let through_link = link.postgres_url(&db.url);
    let timeout = format!("{}s", REQUEST_TIMEOUT.as_secs());
    let server = Arc::new(
        Server::start(
            &Target {
                database_url: through_link,
                redis_url: keys.redis_url.clone(),
                queue: keys.name.clone(),
            },
            &[
                ("HOLDFAST_REQUEST_TIMEOUT", timeout.as_str()),
                ("HOLDFAST_RESERVATION_TTL", "2s"),
                ("HOLDFAST_DB_TIMEOUT", "2s"),
                ("HOLDFAST_MAX_ACTIVE_PER_AGENT", "0"),
            ],
        )
        .await,
    );
    // The worker reaches PostgreSQL directly: only the server's link stalls.
    let direct = Target {
        database_url: db.url.clone(),
        redis_url: keys.redis_url.clone(),
        queue: keys.name.clone(),
    };
    let mut worker = direct.worker(EVERY_SECOND, &[]).await;

    let phase = Arc::new(AtomicU8::new(UP));
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for (i, (_, token)) in scene.agents[..6].iter().enumerate() {
        let plots = scene.plots[i * 10..(i + 1) * 10]
            .iter()
            .map(ToString::to_string)
            .collect();
        load.push(tokio::spawn(agent_load(
            server.clone(),
            token.clone(),
            plots,
            phase.clone(),
            stop.clone(),
        )));
    }
    // And a reader: its caller's session is a read, which the deadline cuts
    // whole (a write gives up a second earlier).
    let reader = {
        let (server, token) = (server.clone(), scene.agents[0].1.clone());
        let (phase, stop) = (phase.clone(), stop.clone());
        tokio::spawn(async move {
            let mut reads = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let began = phase.load(Ordering::SeqCst);
                let asked = Instant::now();
                let body = server
                    .gql(&token, "{ me { id name } }", json!({}))
                    .await
                    .expect("every request gets an answer");
                reads.push(Outcome {
                    began,
                    ended: phase.load(Ordering::SeqCst),
                    code: code_of(&body).map(str::to_owned),
                    took: asked.elapsed(),
                });
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            reads
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;

    // A hold whose release the stall will freeze mid-way: the release waits
    // for the plot's row lock (the test holds it), the link stalls, the test
    // lets go, and the server's transaction takes the lock and ends the hold
    // in PostgreSQL, but its answer, and its COMMIT, never get through.
    let (_, frozen_agent) = &scene.agents[6];
    let plot = scene.plots[60];
    let hold = reserve_when_ready(&server, frozen_agent, plot, Duration::from_secs(10)).await;
    let holder = conn.begin().await.expect("begin");
    holder
        .execute_unprepared(&format!(
            "SELECT id FROM property WHERE id = '{plot}' FOR UPDATE"
        ))
        .await
        .expect("lock the plot");
    let release = {
        let (server, token, hold) = (server.clone(), frozen_agent.clone(), hold.clone());
        tokio::spawn(async move {
            let asked = Instant::now();
            let body = server
                .gql(
                    &token,
                    "mutation($id: ID!) { releaseReservation(reservationId: $id) { id } }",
                    json!({ "id": hold }),
                )
                .await
                .expect("an answer");
            (body, asked.elapsed())
        })
    };
    eventually(
        Duration::from_secs(5),
        "the server's release waits for the plot's lock",
        || {
            let conn = &conn;
            async move {
                count(
                    conn,
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
                     AND application_name = 'holdfast-server' AND wait_event_type = 'Lock'",
                )
                .await
                    == 1
            }
        },
    )
    .await;

    link.stall();
    phase.store(DOWN, Ordering::SeqCst);
    let stalled = Instant::now();
    holder.rollback().await.expect("let the plot go");
    let frozen_at: DateTime<Utc> = one(&conn, "SELECT clock_timestamp() AS v").await;

    // Throughout the stall: no transaction of the server's stays frozen
    // longer than idle_in_transaction_session_timeout.
    let mut oldest_frozen = 0.0_f64;
    let mut frozen_seen = 0;
    while stalled.elapsed() < STALL {
        let (age, n) = frozen_server_transactions(&conn).await;
        oldest_frozen = oldest_frozen.max(age);
        frozen_seen = frozen_seen.max(n);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (release_answer, release_took) = release.await.expect("join");
    assert_eq!(
        code_of(&release_answer),
        Some("SERVICE_UNAVAILABLE"),
        "{release_answer}"
    );

    // The frozen hold: its release rolled back with the ended session, it
    // lapsed while the frozen transaction held its plot, and the worker
    // released it once PostgreSQL had ended that session.
    let ended: Option<DateTime<Utc>> = one(
        &conn,
        &format!("SELECT ended_at AS v FROM reservation WHERE id = '{hold}'"),
    )
    .await;
    let expires_at: DateTime<Utc> = one(
        &conn,
        &format!("SELECT expires_at AS v FROM reservation WHERE id = '{hold}'"),
    )
    .await;
    let status: String = one(
        &conn,
        &format!("SELECT status::text AS v FROM reservation WHERE id = '{hold}'"),
    )
    .await;
    let ended = ended.unwrap_or_else(|| panic!("the frozen hold is still {status}"));
    assert_eq!(status, "EXPIRED", "ended by the worker, not by the release");
    let free_after = (ended - frozen_at).to_std().unwrap_or_default();
    let lag = (ended - expires_at).to_std().unwrap_or_default();
    let bound = IDLE_IN_TRANSACTION_TIMEOUT + SWEEP_PERIOD + MARGIN;
    assert!(
        free_after < bound,
        "the plot was held {free_after:?} after its transaction froze (bound {bound:?})"
    );
    assert!(
        oldest_frozen < (IDLE_IN_TRANSACTION_TIMEOUT + MARGIN).as_secs_f64(),
        "a frozen transaction of the server lived {oldest_frozen:.1} s"
    );

    phase.store(RESTORING, Ordering::SeqCst);
    link.resume();
    phase.store(BACK, Ordering::SeqCst);
    eventually(Duration::from_secs(15), "the server is ready again", || {
        let server = &server;
        async move { server.get("/readyz").await.0 == 200 }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let reads = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the reader ends")
        .expect("join");
    let mut outcomes = Vec::new();
    for agent in load {
        outcomes.extend(
            tokio::time::timeout(Duration::from_secs(30), agent)
                .await
                .expect("the load ends")
                .expect("join"),
        );
    }

    // Every answer, during the stall and around it, within the timeout.
    let reads_during = reads
        .iter()
        .filter(|o| o.began == DOWN && o.ended == DOWN)
        .count();
    assert!(reads_during >= 3, "reads were made during the stall");
    outcomes.extend(reads);
    let during: Vec<_> = outcomes
        .iter()
        .filter(|o| o.began == DOWN && o.ended == DOWN)
        .collect();
    assert!(
        during.len() >= 6,
        "requests were made during the stall: {during:?}"
    );
    for o in &during {
        assert_eq!(o.code.as_deref(), Some("SERVICE_UNAVAILABLE"), "{o:?}");
    }
    for o in &outcomes {
        assert!(
            matches!(
                o.code.as_deref(),
                None | Some(
                    "SERVICE_UNAVAILABLE"
                        | "PROPERTY_UNAVAILABLE"
                        | "RESERVATION_NOT_ACTIVE"
                        | "BUSY"
                )
            ),
            "a clear answer, never INTERNAL: {o:?}"
        );
        assert!(
            o.took < REQUEST_TIMEOUT + MARGIN,
            "answered within the request timeout: {o:?}"
        );
    }
    let longest = during
        .iter()
        .map(|o| o.took)
        .chain([release_took])
        .max()
        .unwrap_or_default();
    assert!(release_took < REQUEST_TIMEOUT + MARGIN, "{release_took:?}");
    let back_ok = outcomes
        .iter()
        .filter(|o| o.began == BACK && o.code.is_none())
        .count();
    println!(
        "a {STALL:?} stall: {} requests during it ({reads_during} reads), all SERVICE_UNAVAILABLE, \
         the longest answer {longest:?} (request timeout {REQUEST_TIMEOUT:?}); {back_ok} successes after it",
        during.len()
    );
    println!(
        "the frozen hold: its plot free {free_after:?} after its transaction froze, release lag {lag:?} \
         (idle_in_transaction_session_timeout {IDLE_IN_TRANSACTION_TIMEOUT:?}, sweep every {SWEEP_PERIOD:?}); \
         server transactions seen frozen at once: {frozen_seen}, the oldest {oldest_frozen:.1} s"
    );

    // Each request cut by the deadline is counted and logged with its id.
    let metrics = server.get("/metrics").await.1;
    assert!(
        sample(&metrics, "holdfast_request_timeouts_total") >= 1.0,
        "{metrics}"
    );
    let timed_out: Vec<Value> = server
        .logs
        .lines()
        .iter()
        .filter(|l| l.contains("the request timed out"))
        .map(|l| serde_json::from_str(l).expect("a JSON log line"))
        .collect();
    assert!(!timed_out.is_empty(), "the timeouts are logged");
    for line in &timed_out {
        let id = line["spans"][0]["request.id"].as_str().unwrap_or("");
        assert!(!id.is_empty(), "with the request's id: {line}");
    }

    // The server recovered by itself; whatever committed unseen lapses and
    // is released: no plot stays held.
    reserve_when_ready(
        &server,
        &scene.agents[0].1,
        scene.plots[61],
        Duration::from_secs(10),
    )
    .await;
    eventually(Duration::from_secs(15), "every hold ended", || {
        let conn = &conn;
        async move {
            count(
                conn,
                "SELECT count(*) AS n FROM reservation WHERE status = 'ACTIVE'",
            )
            .await
                == 0
        }
    })
    .await;
    let mut server = Arc::into_inner(server).expect("the load is over");
    assert!(server.is_running() && worker.is_running());
    server.logs.assert_no_panic("holdfast-server");
    worker.logs.assert_no_panic("holdfast-worker");
    assert_eq!(server.terminate().await.code(), Some(0));
    assert_eq!(worker.terminate().await.code(), Some(0));
    conn.close().await.ok();
    assert_audit_clean(&db.url).await;
}
