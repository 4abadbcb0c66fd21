//! The safety-net sweep: the periodic job behind the release jobs, in
//! batches with SKIP LOCKED.

use std::sync::Arc;

use holdfast_domain::Policy;
use holdfast_domain::db::PoolSettings;
use holdfast_domain::entities::{EndSource, PropertyStatus, ReservationStatus};
use holdfast_domain::reservations::{self, reserve};
use tokio::sync::Barrier;

use crate::helpers::World;

#[tokio::test]
async fn the_sweep_releases_only_expired_reservations() {
    let w = World::new().await;
    let agents = w.agents(4).await;
    let plots = w.plots(4).await;
    let mut ids = Vec::new();
    for (agent, plot) in agents.iter().zip(&plots) {
        ids.push(
            reserve(&w.conn, &w.policy, agent, *plot)
                .await
                .result
                .expect("reserve")
                .reservation
                .id,
        );
    }
    w.lapse(ids[0]).await;
    w.lapse(ids[2]).await;

    let mut seen = Vec::new();
    let report = reservations::sweep(&w.conn, &w.policy, 100, |batch| {
        seen.extend(batch.ended.iter().map(|h| h.reservation.id))
    })
    .await
    .expect("sweep");

    assert_eq!(report.released, 2);
    seen.sort();
    let mut expected = vec![ids[0], ids[2]];
    expected.sort();
    assert_eq!(seen, expected);
    for (i, id) in ids.iter().enumerate() {
        let r = w.stored_reservation(*id).await;
        if i % 2 == 0 {
            assert_eq!(r.status, ReservationStatus::Expired);
            assert_eq!(r.end_source, Some(EndSource::Sweep));
            assert_eq!(
                w.stored_property(plots[i]).await.status,
                PropertyStatus::Available
            );
        } else {
            assert_eq!(r.status, ReservationStatus::Active);
            assert_eq!(
                w.stored_property(plots[i]).await.status,
                PropertyStatus::Reserved
            );
        }
    }
    assert_eq!(w.counts().await.available, 2);
    w.check().await;

    let again = reservations::sweep(&w.conn, &w.policy, 100, |_| {})
        .await
        .expect("again");
    assert_eq!(again.released, 0, "a second sweep finds nothing");
}

/// Two sweeps started at one barrier, in batches of 50: how many holds they
/// ended in all, and how many distinct ones.
async fn two_sweeps_at_once(w: &World) -> (usize, usize) {
    let start = Arc::new(Barrier::new(2));
    let sweeps = (0..2).map(|_| {
        let (conn, start) = (w.conn.clone(), start.clone());
        tokio::spawn(async move {
            start.wait().await;
            let mut ids = Vec::new();
            reservations::sweep(&conn, &Policy::default(), 50, |batch| {
                ids.extend(batch.ended.iter().map(|h| h.reservation.id))
            })
            .await
            .expect("sweep");
            ids
        })
    });
    let results: Vec<_> = futures::future::join_all(sweeps).await;
    let mut all: Vec<_> = results.into_iter().flat_map(|r| r.expect("task")).collect();
    let total = all.len();
    all.sort();
    all.dedup();
    (total, all.len())
}

/// Makes `n` lapsed holds directly in SQL (fast), spread over `agents` agents.
async fn lapsed_holds(w: &World, n: usize, agents: usize) {
    let agents = w.agents(agents).await;
    w.plots(n).await;
    let agent_list: Vec<String> = agents
        .iter()
        .map(|a| format!("'{}'::uuid", a.user_id))
        .collect();
    w.sql(&format!(
        "WITH a AS (SELECT ARRAY[{}] AS ids), \
         p AS (SELECT id, workspace_id, row_number() OVER (ORDER BY code) AS n FROM property), \
         r AS ( \
           INSERT INTO reservation (id, workspace_id, property_id, agent_id, status, created_at, expires_at) \
           SELECT gen_random_uuid(), p.workspace_id, p.id, a.ids[1 + p.n % array_length(a.ids, 1)], 'ACTIVE', \
             clock_timestamp() - interval '1 day', clock_timestamp() - interval '1 minute' FROM p, a \
           RETURNING property_id, agent_id, expires_at) \
         UPDATE property SET status = 'RESERVED', reserved_by_id = r.agent_id, reserved_until = r.expires_at \
         FROM r WHERE property.id = r.property_id",
        agent_list.join(", ")
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_sweeps_at_once_release_each_reservation_exactly_once() {
    let w = World::with_pool(PoolSettings {
        max_connections: 8,
        ..PoolSettings::default()
    })
    .await;
    lapsed_holds(&w, 2000, 10).await;
    let (total, distinct) = two_sweeps_at_once(&w).await;

    assert_eq!(total, 2000, "every hold released");
    assert_eq!(distinct, 2000, "none released twice");
    assert_eq!(
        w.count("SELECT count(*) FROM reservation WHERE status = 'ACTIVE'")
            .await,
        0
    );
    assert_eq!(w.counts().await.available, 2000);
    w.check().await;
}

/// Two sweeps at once over two projects whose holds lapsed interleaved:
/// each batch mixes both projects' plots, and locks their tally rows in one
/// order (project, then shard) as its last step, so the two never wait on
/// each other the other way round (PostgreSQL would then fail one with a
/// deadlock: BUSY).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_sweeps_at_once_over_two_projects_end_each_hold_once() {
    let w = World::with_pool(PoolSettings {
        max_connections: 8,
        ..PoolSettings::default()
    })
    .await;
    let other = w.workspace.add_project(&w.conn, "Riverside").await;
    w.workspace.plots(&w.conn, other, "B", 1000).await;
    lapsed_holds(&w, 1000, 10).await;
    w.sql(
        "WITH r AS ( \
           UPDATE reservation SET expires_at = expires_at - random() * interval '30 seconds' \
           WHERE status = 'ACTIVE' RETURNING property_id, expires_at) \
         UPDATE property p SET reserved_until = r.expires_at FROM r WHERE p.id = r.property_id",
    )
    .await;
    let (total, distinct) = two_sweeps_at_once(&w).await;

    assert_eq!((total, distinct), (2000, 2000), "each hold ended once");
    let counts =
        holdfast_domain::reads::plot_counts(&w.conn, w.admin.workspace_id, &[w.project, other])
            .await
            .expect("counts");
    for project in [w.project, other] {
        let c = &counts[&project];
        assert_eq!((c.available, c.reserved), (1000, 0), "{project:?}");
    }
    w.check().await;
}

#[tokio::test]
async fn ten_thousand_expired_reservations_are_swept_in_batches() {
    let w = World::new().await;
    lapsed_holds(&w, 10_000, 10).await;
    // And some that have not lapsed, which must stay.
    let a = w.agent().await;
    let extra = holdfast_domain::directory::add_properties(
        &w.conn,
        &w.manager,
        w.project,
        &["Z-1".to_owned(), "Z-2".to_owned()],
    )
    .await
    .expect("extra");
    for p in &extra {
        reserve(&w.conn, &Policy::default(), &a, p.id)
            .await
            .result
            .expect("fresh hold");
    }

    let mut batch_sizes = Vec::new();
    let report = reservations::sweep(&w.conn, &w.policy, 1000, |batch| {
        batch_sizes.push(batch.ended.len())
    })
    .await
    .expect("sweep");

    assert_eq!(report.released, 10_000);
    assert_eq!(report.batches, 10);
    assert!(batch_sizes.iter().all(|n| *n <= 1000), "{batch_sizes:?}");
    let counts = w.counts().await;
    assert_eq!((counts.available, counts.reserved), (10_000, 2));
    w.check().await;
}
