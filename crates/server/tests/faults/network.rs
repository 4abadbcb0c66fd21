//! The network between the server and PostgreSQL cut under load while
//! PostgreSQL keeps running: transactions in flight die with their
//! connections, requests answer SERVICE_UNAVAILABLE, and a reservation whose
//! COMMIT was cut mid-way (committed, but its answer and its release job
//! lost) is still released, by the sweep.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use holdfast_testkit::TestDb;

use crate::helpers::{
    EVERY_SECOND, QueueKeys, Scene, Server, Target, TcpProxy, assert_audit_clean, count,
    eventually, reserve_when_ready,
};
use crate::postgres::{BACK, DOWN, RESTORING, UP, agent_load};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_to_postgres_cut_under_load_answer_service_unavailable_and_nothing_is_left_held()
 {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    // Sixty plots for the load, one more for the end.
    let scene = Scene::new(&conn, 6, 61).await;
    let keys = QueueKeys::new();
    let link = TcpProxy::postgres().await;
    let through_link = link.postgres_url(&db.url);
    let server = Arc::new(
        Server::start(
            &Target {
                database_url: through_link,
                redis_url: keys.redis_url.clone(),
                queue: keys.name.clone(),
            },
            &[
                ("HOLDFAST_RESERVATION_TTL", "2s"),
                ("HOLDFAST_DB_TIMEOUT", "2s"),
                ("HOLDFAST_MAX_ACTIVE_PER_AGENT", "0"),
            ],
        )
        .await,
    );
    // The worker reaches PostgreSQL directly: only the server is cut off.
    let direct = Target {
        database_url: db.url.clone(),
        redis_url: keys.redis_url.clone(),
        queue: keys.name.clone(),
    };
    let mut worker = direct.worker(EVERY_SECOND, &[]).await;

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
    link.cut();
    phase.store(DOWN, Ordering::SeqCst);
    let cut = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("postgres"), "{body}");
    phase.store(RESTORING, Ordering::SeqCst);
    link.restore();
    phase.store(BACK, Ordering::SeqCst);
    println!("the link was cut for {:?}", cut.elapsed());
    eventually(Duration::from_secs(15), "the server is ready again", || {
        let server = &server;
        async move { server.get("/readyz").await.0 == 200 }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
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

    let down: Vec<_> = outcomes
        .iter()
        .filter(|o| o.began == DOWN && o.ended == DOWN)
        .collect();
    assert!(
        down.len() >= 3,
        "requests were made while cut off: {down:?}"
    );
    for o in &down {
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
        assert!(o.took < Duration::from_secs(5), "no request hung: {o:?}");
    }
    let back_ok = outcomes
        .iter()
        .filter(|o| o.began == BACK && o.code.is_none())
        .count();
    println!(
        "{} requests: {} while cut off (all SERVICE_UNAVAILABLE), {back_ok} successes after",
        outcomes.len(),
        down.len()
    );

    // The server recovered by itself: a reserve goes through again.
    reserve_when_ready(
        &server,
        &scene.agents[0].1,
        scene.plots[60],
        Duration::from_secs(10),
    )
    .await;

    // Whatever committed unseen (a cut COMMIT, or a release cut off) lapses
    // and is released: no plot stays held.
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
    assert_audit_clean(&db.url).await;
}
