//! Several worker replicas on one queue: every reservation ends exactly once.

use std::collections::HashSet;
use std::time::Duration;

use holdfast_domain::entities::{EndSource, ReservationStatus};

use redis::AsyncCommands;

use crate::helpers::{World, eventually, lag, sample};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_and_a_sweep_every_second_end_every_reservation_exactly_once() {
    let w = World::new().await;
    let a = w.spawn_worker("* * * * * *").await;
    let b = w.spawn_worker("* * * * * *").await;
    // Long enough for all to be reserved and scheduled before the first lapses.
    let rs = w.reserve_many(24, Duration::from_secs(4)).await;
    // Two thirds get their job; the rest are left to the sweep, as if their
    // push had failed.
    for r in rs
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, r)| r)
    {
        w.schedule(r).await;
    }

    let ids: Vec<_> = rs.iter().map(|r| r.id).collect();
    let ended = w.wait_all_ended(&ids, Duration::from_secs(20)).await;
    // Every job runs too (the sweep, due at the same whole second, usually
    // wins the race): wait for all 16 to be acknowledged.
    let done = w.queue.config().done_jobs_set();
    let redis = w.redis().await;
    eventually(Duration::from_secs(10), "every job ran", || {
        let (mut redis, done) = (redis.clone(), done.clone());
        async move { redis.scard::<_, u64>(&done).await.expect("scard") == 16 }
    })
    .await;

    let mut by_job = 0;
    for r in &ended {
        let now = w.stored(r.id).await;
        assert_eq!(now, *r, "ended once, never touched again");
        assert_eq!(r.status, ReservationStatus::Expired);
        match r.end_source {
            Some(EndSource::Job) => by_job += 1,
            Some(EndSource::Sweep) => {}
            other => panic!("ended by {other:?}"),
        }
    }
    let lags: Vec<f64> = ended.iter().map(lag).collect();
    println!("release lag (s) with two workers and a 1 s sweep: {lags:?} ({by_job} by job)");
    let distinct: HashSet<_> = ended.iter().map(|r| r.property_id).collect();
    assert_eq!(distinct.len(), 24);
    assert_eq!(w.counts().await.available, 24);
    w.audit_clean().await;

    // Both workers record into this process's one registry: the releases
    // counted, by job and by sweep, add up to exactly one per reservation.
    let metrics = a.metrics().await;
    let jobs = sample(&metrics, "holdfast_releases_total{source=\"job\"}");
    let sweeps = sample(&metrics, "holdfast_releases_total{source=\"sweep\"}");
    assert_eq!(jobs + sweeps, 24.0, "{metrics}");
    assert_eq!(jobs, f64::from(by_job), "{metrics}");
    let nothing_to_do = sample(
        &metrics,
        "holdfast_release_jobs_total{outcome=\"nothing_to_do\"}",
    );
    assert_eq!(jobs + nothing_to_do, 16.0, "every job ran once: {metrics}");
    // Each tick was claimed by one replica; the other skipped it.
    assert!(
        sample(&metrics, "holdfast_sweeps_total{outcome=\"skipped\"}") >= 1.0,
        "{metrics}"
    );
    a.stop().await;
    b.stop().await;
}
