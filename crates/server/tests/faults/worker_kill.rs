//! The worker killed with SIGKILL in the middle of a batch of due release
//! jobs, and in the middle of a sweep: after a restart every hold is
//! released, and none twice (a trigger logs every end).

use std::time::{Duration, Instant};

use holdfast_domain::job::{HoldJob, JobKind};
use holdfast_queue::ReleaseQueue;
use holdfast_testkit::TestDb;

use crate::helpers::{
    EVERY_SECOND, QueueKeys, Scene, Target, assert_audit_clean, count, ends, log_every_end,
};

/// Polls the number of ended holds until a fifth (but not all) have ended,
/// and returns it; fails if the work is not caught mid-way.
async fn wait_mid_way(conn: &sea_orm::DatabaseConnection, total: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ended, _) = ends(conn).await;
        assert!(
            ended < total,
            "all {total} ended before the worker could be killed mid-way"
        );
        if ended >= total / 5 {
            return ended;
        }
        assert!(
            Instant::now() < deadline,
            "{ended} of {total} ended within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_in_the_middle_of_a_batch_of_due_jobs_loses_none_and_ends_none_twice() {
    const N: usize = 600;
    let db = TestDb::new().await;
    let conn = db.connect().await;
    let scene = Scene::new(&conn, 1, 0).await;
    let keys = QueueKeys::new();
    let target = Target {
        database_url: db.url.clone(),
        redis_url: keys.redis_url.clone(),
        queue: keys.name.clone(),
    };
    let ids = scene.lapsed_holds(&conn, N).await;
    log_every_end(&conn).await;
    let queue = ReleaseQueue::new(&target.redis_url, &target.queue).expect("queue");
    let due = chrono::Utc::now() - chrono::Duration::seconds(1);
    for id in &ids {
        let job = HoldJob {
            workspace_id: scene.admin.workspace_id,
            reservation_id: *id,
            version: 1,
            kind: JobKind::Release,
        };
        queue.schedule(&job, due).await.expect("schedule");
    }

    // No sweep: only the jobs can release these holds.
    let mut first = target.worker("off", &[]).await;
    let at_kill = wait_mid_way(&conn, N as i64).await;
    first.kill().await;
    println!("{at_kill} of {N} released when the worker was killed");

    let restarted = Instant::now();
    let mut second = target.worker("off", &[]).await;
    let deadline = Instant::now() + Duration::from_secs(45);
    while ends(&conn).await.0 < N as i64 {
        assert!(
            Instant::now() < deadline,
            "{} of {N} released 45 s after the restart",
            ends(&conn).await.0
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "the rest released {:?} after the restart",
        restarted.elapsed()
    );
    assert_eq!(ends(&conn).await, (N as i64, 0), "every hold ended once");
    let not_by_job = count(
        &conn,
        "SELECT count(*) AS n FROM reservation WHERE status <> 'EXPIRED' OR end_source <> 'job'",
    )
    .await;
    assert_eq!(not_by_job, 0, "every hold expired by its job");
    first.logs.assert_no_panic("the killed worker");
    second.logs.assert_no_panic("holdfast-worker");
    assert_eq!(second.terminate().await.code(), Some(0));
    assert_audit_clean(&db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_in_the_middle_of_a_sweep_of_5000_lapsed_holds_loses_none_and_ends_none_twice()
 {
    const N: usize = 5000;
    let db = TestDb::new().await;
    let conn = db.connect().await;
    let scene = Scene::new(&conn, 1, 0).await;
    let keys = QueueKeys::new();
    let target = Target {
        database_url: db.url.clone(),
        redis_url: keys.redis_url.clone(),
        queue: keys.name.clone(),
    };
    scene.lapsed_holds(&conn, N).await;
    log_every_end(&conn).await;

    // Small batches, so that the sweep is many transactions long.
    let mut first = target
        .worker(EVERY_SECOND, &["--sweep-batch-size", "50"])
        .await;
    let at_kill = wait_mid_way(&conn, N as i64).await;
    first.kill().await;
    println!("{at_kill} of {N} swept when the worker was killed");
    assert!(
        first.logs.count("sweep released a batch") >= 1,
        "killed while sweeping"
    );

    let restarted = Instant::now();
    let mut second = target.worker(EVERY_SECOND, &[]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while ends(&conn).await.0 < N as i64 {
        assert!(
            Instant::now() < deadline,
            "{} of {N} released 30 s after the restart",
            ends(&conn).await.0
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("the rest swept {:?} after the restart", restarted.elapsed());
    assert_eq!(ends(&conn).await, (N as i64, 0), "every hold ended once");
    let not_swept = count(
        &conn,
        "SELECT count(*) AS n FROM reservation WHERE status <> 'EXPIRED' OR end_source <> 'sweep'",
    )
    .await;
    assert_eq!(not_swept, 0, "every hold expired by the sweep");
    let still_reserved = count(
        &conn,
        "SELECT count(*) AS n FROM property WHERE status = 'RESERVED'",
    )
    .await;
    assert_eq!(still_reserved, 0, "every plot is free");
    second.logs.assert_no_panic("holdfast-worker");
    assert_eq!(second.terminate().await.code(), Some(0));
    assert_audit_clean(&db.url).await;
}
