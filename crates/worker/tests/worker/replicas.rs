//! Several worker replicas on one queue: every reservation ends exactly once.

use std::collections::HashSet;
use std::time::Duration;

use holdfast_domain::entities::{EndSource, ReservationStatus};

use crate::helpers::{World, lag, sample};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_and_a_sweep_every_second_end_every_reservation_exactly_once() {
    let w = World::new().await;
    let a = w.spawn_worker("* * * * * *").await;
    let b = w.spawn_worker("* * * * * *").await;
    let rs = w.reserve_many(24, Duration::from_secs(2)).await;
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
    let ended = w.wait_all_ended(&ids, Duration::from_secs(15)).await;
    // Let any duplicate that was going to happen, happen.
    tokio::time::sleep(Duration::from_secs(2)).await;

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
    // Each tick was claimed by one replica; the other skipped it.
    assert!(
        sample(&metrics, "holdfast_sweeps_total{outcome=\"skipped\"}") >= 1.0,
        "{metrics}"
    );
    a.stop().await;
    b.stop().await;
}
