//! PostgreSQL stopped under load, on a private cluster of the test's own:
//! requests fail fast with SERVICE_UNAVAILABLE, nothing hangs or panics, and
//! the server and the worker recover without a restart once it is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use holdfast_domain::db::{PoolSettings, connect};
use serde_json::{Value, json};

use crate::helpers::{
    EVERY_SECOND, QueueKeys, Scene, Server, Target, assert_audit_clean, code_of, count, eventually,
    private_cluster, reserve_when_ready,
};

pub const UP: u8 = 0;
pub const DOWN: u8 = 1;
/// Coming back: requests may already succeed.
pub const RESTORING: u8 = 2;
pub const BACK: u8 = 3;

/// One request of the load: when it began and ended (phases), its answer
/// (`None` for success, else the error code) and how long it took.
#[derive(Debug)]
pub struct Outcome {
    pub began: u8,
    pub ended: u8,
    pub code: Option<String>,
    pub took: Duration,
}

/// An agent reserving its own plots in turn and releasing each at once,
/// until `stop`.
pub async fn agent_load(
    server: Arc<Server>,
    token: String,
    plots: Vec<String>,
    phase: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        let plot = &plots[i % plots.len()];
        i += 1;
        let began = phase.load(Ordering::SeqCst);
        let asked = Instant::now();
        let body = server
            .gql(
                &token,
                "mutation($id: ID!) { reserveProperty(propertyId: $id) { id } }",
                json!({ "id": plot }),
            )
            .await
            .expect("every request gets an answer");
        let code = code_of(&body).map(str::to_owned);
        outcomes.push(Outcome {
            began,
            ended: phase.load(Ordering::SeqCst),
            code: code.clone(),
            took: asked.elapsed(),
        });
        if code.is_none()
            && let Some(id) = body["data"]["reserveProperty"]["id"].as_str()
        {
            let asked = Instant::now();
            let began = phase.load(Ordering::SeqCst);
            let body: Value = server
                .gql(
                    &token,
                    "mutation($id: ID!) { releaseReservation(reservationId: $id) { id } }",
                    json!({ "id": id }),
                )
                .await
                .expect("every request gets an answer");
            outcomes.push(Outcome {
                began,
                ended: phase.load(Ordering::SeqCst),
                code: code_of(&body).map(str::to_owned),
                took: asked.elapsed(),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgres_stopped_under_load_requests_fail_fast_and_all_recovers_without_a_restart() {
    let cluster = private_cluster().await;
    let url = cluster.url("holdfast");
    let settings = PoolSettings {
        max_connections: 4,
        ..PoolSettings::default()
    };
    let conn = connect(&url, &settings).await.expect("connect");
    // Sixty plots for the load, one more for the end.
    let scene = Scene::new(&conn, 6, 61).await;
    conn.close().await.ok();
    let keys = QueueKeys::new();
    let target = Target {
        database_url: url.clone(),
        redis_url: keys.redis_url.clone(),
        queue: keys.name.clone(),
    };
    let server = Arc::new(
        Server::start(
            &target,
            &[
                ("HOLDFAST_RESERVATION_TTL", "2s"),
                ("HOLDFAST_DB_TIMEOUT", "2s"),
                ("HOLDFAST_MAX_ACTIVE_PER_AGENT", "0"),
            ],
        )
        .await,
    );
    let mut worker = target.worker(EVERY_SECOND, &[]).await;

    // Six agents, ten plots each, reserving and releasing; holds whose
    // release failed are left to lapse for the worker.
    let phase = Arc::new(AtomicU8::new(UP));
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for (i, (_, token)) in scene.agents.iter().enumerate() {
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
    tokio::time::sleep(Duration::from_secs(1)).await;

    cluster.stop().await;
    phase.store(DOWN, Ordering::SeqCst);
    let stopped = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200, "the server process stays up");
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("postgres"), "/readyz names postgres: {body}");
    let worker_ready = reqwest::get(format!("http://{}/readyz", worker.addr))
        .await
        .expect("the worker answers");
    assert_eq!(worker_ready.status(), 503);
    assert!(worker.is_running(), "the worker stays up");

    phase.store(RESTORING, Ordering::SeqCst);
    cluster.start_again().await;
    phase.store(BACK, Ordering::SeqCst);
    println!("PostgreSQL was down for {:?}", stopped.elapsed());
    eventually(Duration::from_secs(15), "the server is ready again", || {
        let server = &server;
        async move { server.get("/readyz").await.0 == 200 }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let mut outcomes = Vec::new();
    for agent in load {
        outcomes.extend(
            tokio::time::timeout(Duration::from_secs(30), agent)
                .await
                .expect("the load ends")
                .expect("join"),
        );
    }

    // During the outage: SERVICE_UNAVAILABLE, fast; never INTERNAL or a hang.
    let down: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.began == DOWN && o.ended == DOWN)
        .collect();
    assert!(
        down.len() >= 3,
        "requests were made during the outage: {down:?}"
    );
    for o in &down {
        assert_eq!(o.code.as_deref(), Some("SERVICE_UNAVAILABLE"), "{o:?}");
    }
    let slowest = outcomes.iter().map(|o| o.took).max().unwrap_or_default();
    assert!(
        slowest < Duration::from_secs(5),
        "no request waited long: the slowest took {slowest:?}"
    );
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
    }
    let back_ok = outcomes
        .iter()
        .filter(|o| o.began == BACK && o.code.is_none())
        .count();
    println!(
        "{} requests: {} during the outage (all SERVICE_UNAVAILABLE), {back_ok} successes after it, slowest {slowest:?}",
        outcomes.len(),
        down.len()
    );

    // The worker recovered too: a hold taken now, and any left behind by
    // the outage, lapse and are released by it.
    // After: reservations go through again, with no restart.
    let last = reserve_when_ready(
        &server,
        &scene.agents[0].1,
        scene.plots[60],
        Duration::from_secs(10),
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "the worker is ready again",
        || async {
            reqwest::get(format!("http://{}/readyz", worker.addr))
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
    let conn = connect(&url, &settings).await.expect("connect again");
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
    let by_worker = count(
        &conn,
        &format!(
            "SELECT count(*) AS n FROM reservation WHERE id = '{last}' \
             AND status = 'EXPIRED' AND end_source IN ('job', 'sweep')"
        ),
    )
    .await;
    assert_eq!(
        by_worker, 1,
        "the hold taken after the outage was released by the worker"
    );
    let mut server = Arc::into_inner(server).expect("the load is over");
    assert!(server.is_running() && worker.is_running());
    server.logs.assert_no_panic("holdfast-server");
    worker.logs.assert_no_panic("holdfast-worker");
    assert_eq!(server.terminate().await.code(), Some(0));
    assert_eq!(worker.terminate().await.code(), Some(0));
    conn.close().await.ok();
    assert_audit_clean(&url).await;
}
