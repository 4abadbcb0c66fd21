//! Redis down while agents reserve, and Redis restarted under a running
//! worker, on a private redis-server each test starts and kills.

use std::time::{Duration, Instant};

use holdfast_testkit::TestDb;
use serde_json::Value;

use crate::helpers::{
    EVERY_SECOND, PrivateRedis, Scene, Server, Target, assert_audit_clean, count, eventually,
    sample,
};

fn id_list(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_reservations_stand_and_the_sweep_releases_every_one_on_time() {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    let scene = Scene::new(&conn, 5, 5).await;
    let mut redis = PrivateRedis::start().await;
    let target = Target {
        database_url: db.url.clone(),
        redis_url: redis.url(),
        queue: holdfast_testkit::unique_queue(),
    };
    let mut server = Server::start(&target, &[("HOLDFAST_RESERVATION_TTL", "2s")]).await;
    let mut worker = target.worker(EVERY_SECOND, &[]).await;
    redis.stop().await;

    // Every agent reserves a plot of their own while Redis is gone.
    let mut ids = Vec::new();
    for ((_, token), plot) in scene.agents.iter().zip(&scene.plots) {
        let asked = Instant::now();
        let body = server.reserve(token, *plot).await.expect("an answer");
        assert_eq!(
            body["data"]["reserveProperty"]["status"], "ACTIVE",
            "{body}"
        );
        assert!(
            asked.elapsed() < Duration::from_secs(3),
            "a reserve with Redis down took {:?}",
            asked.elapsed()
        );
        ids.push(
            body["data"]["reserveProperty"]["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    let (_, metrics) = server.get("/metrics").await;
    assert_eq!(
        sample(&metrics, "holdfast_release_jobs_enqueue_failures_total"),
        5.0,
        "each lost push is counted"
    );
    assert_eq!(
        server
            .logs
            .count("could not schedule the release job; the sweep will release this hold"),
        5,
        "and logged"
    );
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["down"], serde_json::json!(["redis"]), "{body}");

    // The sweep (every second) releases them all, within a sweep period of
    // their end, with no job to help.
    let list = id_list(&ids);
    eventually(Duration::from_secs(15), "every hold released", || {
        let sql = format!(
            "SELECT count(*) AS n FROM reservation WHERE id IN ({list}) AND status = 'ACTIVE'"
        );
        let conn = &conn;
        async move { count(conn, &sql).await == 0 }
    })
    .await;
    // On time: within a sweep period (1 s) of its end, plus slack for a
    // loaded machine.
    let late = count(
        &conn,
        &format!(
            "SELECT count(*) AS n FROM reservation WHERE id IN ({list}) AND \
             (status <> 'EXPIRED' OR end_source <> 'sweep' OR ended_at > expires_at + interval '3 seconds')"
        ),
    )
    .await;
    assert_eq!(late, 0, "each expired by the sweep within 3 s of its end");
    let lag = count(
        &conn,
        &format!(
            "SELECT (1000 * extract(epoch FROM max(ended_at - expires_at)))::bigint AS n \
             FROM reservation WHERE id IN ({list})"
        ),
    )
    .await;
    println!("with Redis down, the sweep released every hold within {lag} ms of its end");

    // Redis comes back: both processes see it without a restart.
    redis.start_again().await;
    eventually(Duration::from_secs(10), "the server is ready again", || {
        let server = &server;
        async move { server.get("/readyz").await.0 == 200 }
    })
    .await;
    assert!(server.is_running() && worker.is_running());
    server.logs.assert_no_panic("holdfast-server");
    worker.logs.assert_no_panic("holdfast-worker");
    assert_eq!(server.terminate().await.code(), Some(0));
    assert_eq!(worker.terminate().await.code(), Some(0));
    assert_audit_clean(&db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_redis_restarts_reconnects_by_itself_and_runs_the_next_job() {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    let scene = Scene::new(&conn, 2, 2).await;
    let mut redis = PrivateRedis::start().await;
    let target = Target {
        database_url: db.url.clone(),
        redis_url: redis.url(),
        queue: holdfast_testkit::unique_queue(),
    };
    let server = Server::start(&target, &[("HOLDFAST_RESERVATION_TTL", "2s")]).await;
    // No sweep: only a release job can end these holds.
    let mut worker = target.worker("off", &[]).await;
    let worker_ready = |worker_addr: std::net::SocketAddr| async move {
        reqwest::get(format!("http://{worker_addr}/readyz"))
            .await
            .is_ok_and(|r| r.status() == 200)
    };

    let ended_by_job = |id: String| {
        let conn = &conn;
        async move {
            count(
                conn,
                &format!(
                    "SELECT count(*) AS n FROM reservation WHERE id = '{id}' \
                     AND status = 'EXPIRED' AND end_source = 'job'"
                ),
            )
            .await
                == 1
        }
    };
    let reserve = |i: usize| {
        let (server, scene) = (&server, &scene);
        async move {
            let body = server
                .reserve(&scene.agents[i].1, scene.plots[i])
                .await
                .expect("an answer");
            body["data"]["reserveProperty"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("reserved: {body}"))
                .to_owned()
        }
    };

    let before = reserve(0).await;
    eventually(Duration::from_secs(10), "the first job ran", || {
        ended_by_job(before.clone())
    })
    .await;

    // Redis dies (losing everything in it) and comes back on the same port.
    redis.stop().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !worker_ready(worker.addr).await,
        "the worker sees Redis gone"
    );
    redis.start_again().await;
    let restarted = Instant::now();
    eventually(Duration::from_secs(15), "the worker is ready again", || {
        worker_ready(worker.addr)
    })
    .await;
    eventually(Duration::from_secs(10), "the server is ready again", || {
        let server = &server;
        async move { server.get("/readyz").await.0 == 200 }
    })
    .await;

    // A job scheduled after the restart runs: the worker went on by itself.
    let after = reserve(1).await;
    eventually(
        Duration::from_secs(15),
        "the job scheduled after the restart ran",
        || ended_by_job(after.clone()),
    )
    .await;
    println!(
        "job after the Redis restart ran {:?} after Redis came back",
        restarted.elapsed()
    );
    assert!(worker.is_running());
    worker.logs.assert_no_panic("holdfast-worker");
    assert_eq!(worker.terminate().await.code(), Some(0));
    assert_audit_clean(&db.url).await;
}
