//! The sweep as the safety net: lost jobs, Redis down, several replicas.

use std::time::Duration;

use chrono::Utc;
use holdfast_domain::Policy;
use holdfast_domain::entities::{EndSource, ReservationStatus};
use holdfast_queue::ReleaseQueue;
use holdfast_runtime::Outbox;
use holdfast_worker::sweep::{Sweeper, TickOutcome};
use redis::AsyncCommands;

use crate::helpers::{World, lag};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_whose_jobs_were_deleted_from_redis_are_released_by_the_sweep() {
    let w = World::new().await;
    let rs = w.reserve_many(5, Duration::from_secs(2)).await;
    for r in &rs {
        w.schedule(r).await;
    }
    // Lose every job: what a Redis flush or a failed push leaves behind.
    let mut redis = w.redis().await;
    let config = w.queue.config();
    let _: () = redis
        .del(&[config.scheduled_jobs_set(), config.job_data_hash()])
        .await
        .expect("del");
    let worker = w.spawn_worker("* * * * * *").await;

    let ids: Vec<_> = rs.iter().map(|r| r.id).collect();
    let ended = w.wait_all_ended(&ids, Duration::from_secs(10)).await;

    let lags: Vec<f64> = ended.iter().map(lag).collect();
    println!("release lag (s) by a sweep every second: {lags:?}");
    for r in &ended {
        assert_eq!(r.status, ReservationStatus::Expired);
        assert_eq!(r.end_source, Some(EndSource::Sweep));
        // About one sweep period (1 s here); the bound leaves room for a
        // loaded CI machine, while the jobs are gone, so only the sweep ran.
        assert!(lag(r) < 5.0, "soon after expiresAt: {}", lag(r));
    }
    assert_eq!(w.counts().await.available, 5);
    worker.stop().await;
    w.audit_clean().await;
}

fn sweeper(w: &World, queue: ReleaseQueue, replica: &str) -> Sweeper {
    Sweeper {
        db: w.conn.clone(),
        outbox: Outbox::new(queue.clone(), Policy::default()),
        queue,
        batch_size: 3,
        replica: replica.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_tick_is_done_once_by_one_replica_and_the_others_skip_it() {
    let w = World::new().await;
    let rs = w.reserve_many(7, Duration::from_secs(3600)).await;
    for r in &rs {
        w.lapse(r.id).await;
    }
    let tick = Utc::now();
    let hold = Duration::from_secs(5);
    let a = sweeper(&w, w.queue.clone(), "replica-a");
    let b = sweeper(&w, w.queue.clone(), "replica-b");

    let (ra, rb) = tokio::join!(a.tick(tick, hold), b.tick(tick, hold));

    let (swept, skipped) = match (&ra, &rb) {
        (TickOutcome::Swept(report), TickOutcome::Skipped { holder }) => (report, holder),
        (TickOutcome::Skipped { holder }, TickOutcome::Swept(report)) => (report, holder),
        other => panic!("expected one sweep and one skip, got {other:?}"),
    };
    assert_eq!(swept.released, 7);
    assert!(
        skipped
            .as_deref()
            .is_some_and(|h| h.starts_with("replica-")),
        "{skipped:?}"
    );
    for r in &rs {
        assert_eq!(w.stored(r.id).await.end_source, Some(EndSource::Sweep));
    }
    // The claim lapses before the next tick: that one is swept again.
    tokio::time::sleep(hold).await;
    assert!(matches!(
        a.tick(tick + chrono::Duration::seconds(10), hold).await,
        TickOutcome::Swept(_)
    ));
    w.audit_clean().await;
}

#[tokio::test]
async fn the_sweep_still_runs_when_redis_is_unreachable() {
    let w = World::new().await;
    let rs = w.reserve_many(2, Duration::from_secs(3600)).await;
    for r in &rs {
        w.lapse(r.id).await;
    }
    let down = ReleaseQueue::new("redis://127.0.0.1:1", &w.queue_keys.name).expect("lazy");

    let outcome = sweeper(&w, down, "replica-a")
        .tick(Utc::now(), Duration::from_secs(5))
        .await;

    assert!(
        matches!(outcome, TickOutcome::Swept(report) if report.released == 2),
        "{outcome:?}"
    );
    w.audit_clean().await;
}
