//! The real `holdfast-worker` binary: settings, signals, and a crash.

use std::time::Duration;

use holdfast_domain::entities::{EndSource, ReservationStatus};

use crate::helpers::{World, eventually, get, lag};

#[tokio::test]
async fn a_bad_setting_stops_the_worker_with_exit_code_2_and_one_line_naming_it() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_holdfast-worker"))
        .env("HOLDFAST_SWEEP_SCHEDULE", "*/5 * * * *")
        .output()
        .await
        .expect("run");

    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("HOLDFAST_SWEEP_SCHEDULE"), "{stderr}");
    assert!(stderr.contains("seconds field"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_job_in_hand_finish_then_the_worker_exits_0() {
    let w = World::new().await;
    let r = w.reserve_many(1, Duration::from_secs(1)).await.remove(0);
    w.schedule(&r).await;
    let blocker = w.lock_plots(std::slice::from_ref(&r)).await;
    let mut worker = w.spawn_binary("*/1 * * * * *").await;
    assert_eq!(get(worker.addr, "/healthz").await.0, 200);
    let (status, body) = get(worker.addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"postgres\":{\"status\":\"up\"}")
            && body.contains("\"redis\":{\"status\":\"up\"}"),
        "{body}"
    );
    w.wait_in_flight(Duration::from_secs(10)).await;

    worker.signal("TERM").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        worker.child.try_wait().expect("try_wait").is_none(),
        "still finishing the job in hand"
    );
    blocker.rollback().await.expect("unlock");

    let status = worker.wait(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
    let ended = w.stored(r.id).await;
    assert_eq!(
        ended.status,
        ReservationStatus::Expired,
        "the job in hand was finished"
    );
    assert!(w.in_flight().await.is_empty(), "and acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_with_sigkill_while_jobs_are_due_loses_none_of_them() {
    let w = World::new().await;
    let rs = w.reserve_many(4, Duration::from_secs(2)).await;
    for r in &rs {
        w.schedule(r).await;
    }
    let blocker = w.lock_plots(&rs).await;
    let mut first = w.spawn_binary("off").await;
    let held = w.wait_in_flight(Duration::from_secs(10)).await;

    first.child.kill().await.expect("SIGKILL");
    println!("jobs in flight when the worker was killed: {}", held.len());
    blocker.rollback().await.expect("unlock plots");
    for r in &rs {
        assert_eq!(
            w.stored(r.id).await.status,
            ReservationStatus::Active,
            "nothing released yet"
        );
    }

    let mut second = w.spawn_binary("off").await;
    let ids: Vec<_> = rs.iter().map(|r| r.id).collect();
    let ended = w.wait_all_ended(&ids, Duration::from_secs(30)).await;

    let lags: Vec<f64> = ended.iter().map(lag).collect();
    println!("release lag (s) after a SIGKILL and a restart: {lags:?}");
    for r in &ended {
        assert_eq!(r.status, ReservationStatus::Expired);
        // Released by their jobs (the sweep is off): the killed worker's
        // in-flight jobs went back to the queue.
        assert_eq!(r.end_source, Some(EndSource::Job));
    }
    // The acknowledgements follow the commits by a moment.
    eventually(Duration::from_secs(5), "no job left in flight", || async {
        w.in_flight().await.is_empty()
    })
    .await;
    second.signal("TERM").await;
    assert_eq!(second.wait(Duration::from_secs(15)).await.code(), Some(0));
    w.audit_clean().await;
}
