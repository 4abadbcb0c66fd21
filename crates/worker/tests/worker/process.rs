//! The real `holdfast-worker` binary: settings, signals, and a crash.

use std::collections::HashSet;
use std::time::Duration;

use holdfast_domain::entities::{EndSource, ReservationStatus};
use redis::AsyncCommands;
use sea_orm::{ConnectionTrait, TransactionTrait};

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

#[tokio::test]
async fn sigterm_stops_the_worker_gracefully_with_exit_code_0() {
    let w = World::new().await;
    let mut worker = w.spawn_binary("*/1 * * * * *").await;
    assert_eq!(get(worker.addr, "/healthz").await.0, 200);
    let (status, body) = get(worker.addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");

    worker.signal("TERM").await;

    let status = worker.wait(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_with_sigkill_while_jobs_are_due_loses_none_of_them() {
    let w = World::new().await;
    let rs = w.reserve_many(4, Duration::from_secs(2)).await;
    for r in &rs {
        w.schedule(r).await;
    }
    // Hold the plots' rows, so that the worker takes the due jobs and is
    // stuck on them (each attempt waits for the lock) when it is killed.
    let blocker = w.conn.begin().await.expect("begin");
    let plots: Vec<String> = rs.iter().map(|r| format!("'{}'", r.property_id)).collect();
    blocker
        .execute_unprepared(&format!(
            "SELECT 1 FROM property WHERE id IN ({}) FOR UPDATE",
            plots.join(", ")
        ))
        .await
        .expect("lock plots");
    let mut first = w.spawn_binary("off").await;

    let mut redis = w.redis().await;
    let pattern = format!("{}:*", w.queue.config().inflight_jobs_set());
    let held = std::sync::Arc::new(std::sync::Mutex::new(HashSet::<String>::new()));
    eventually(Duration::from_secs(10), "the worker holds due jobs", || {
        let (mut redis, pattern, held) = (redis.clone(), pattern.clone(), held.clone());
        async move {
            let sets: Vec<String> = redis.keys(&pattern).await.expect("keys");
            let mut ids = HashSet::new();
            for set in sets {
                let members: Vec<String> = redis.smembers(&set).await.expect("smembers");
                ids.extend(members);
            }
            let found = !ids.is_empty();
            *held.lock().expect("lock") = ids;
            found
        }
    })
    .await;
    first.child.kill().await.expect("SIGKILL");
    let held = held.lock().expect("lock").clone();
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
    let inflight: Vec<String> = redis.keys(&pattern).await.expect("keys");
    for set in inflight {
        let left: Vec<String> = redis.smembers(&set).await.expect("smembers");
        assert!(left.is_empty(), "{set} still holds {left:?}");
    }
    second.signal("TERM").await;
    assert_eq!(second.wait(Duration::from_secs(15)).await.code(), Some(0));
    w.audit_clean().await;
}
