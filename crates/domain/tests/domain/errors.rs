//! Every failure is a DomainError, never a panic; the database's own errors
//! are mapped: lock timeout to Busy, lost connections to Unavailable.

use std::time::{Duration, Instant};

use holdfast_domain::db::{PoolSettings, connect};
use holdfast_domain::reservations::{self, reserve};
use holdfast_domain::{DomainError, Policy, PropertyId, ReservationId};
use sea_orm::{ConnectionTrait, TransactionTrait};

use crate::helpers::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_property_locked_longer_than_the_lock_timeout_answers_busy_quickly() {
    let w = World::with_pool(PoolSettings {
        lock_timeout: Duration::from_millis(300),
        ..PoolSettings::default()
    })
    .await;
    let a = w.agent().await;
    let plot = w.plot().await;
    let holder = w.conn.begin().await.expect("begin");
    holder
        .execute_unprepared(&format!(
            "SELECT 1 FROM property WHERE id = '{plot}' FOR UPDATE"
        ))
        .await
        .expect("hold the lock");

    let started = Instant::now();
    let err = reserve(&w.conn, &w.policy, &a, plot)
        .await
        .result
        .expect_err("busy");
    let waited = started.elapsed();

    assert!(matches!(err, DomainError::Busy), "{err:?}");
    assert!(err.is_transient());
    // Bounded by the lock timeout, not by the holder: generous for a noisy machine.
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    holder.rollback().await.expect("rollback");
    reserve(&w.conn, &w.policy, &a, plot)
        .await
        .result
        .expect("free again");
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_is_unavailable() {
    // Port 1 on loopback: nothing listens there, the connect is refused at once.
    let conn = connect(
        "postgres://postgres@127.0.0.1:1/holdfast",
        &PoolSettings {
            acquire_timeout: Duration::from_secs(2),
            ..PoolSettings::default()
        },
    )
    .await
    .expect("a lazy pool connects on first use");
    let actor = holdfast_domain::Actor {
        user_id: holdfast_domain::UserId::new(),
        workspace_id: holdfast_domain::WorkspaceId::new(),
        role: holdfast_domain::entities::Role::SalesAgent,
    };

    let err = reserve(&conn, &Policy::default(), &actor, PropertyId::new())
        .await
        .result
        .expect_err("down");
    assert!(matches!(err, DomainError::Unavailable(_)), "{err:?}");
    let err = reservations::release(&conn, &Policy::default(), &actor, ReservationId::new())
        .await
        .result
        .expect_err("down");
    assert!(matches!(err, DomainError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn a_connection_cut_in_the_middle_is_unavailable_and_the_pool_recovers() {
    // Two connections: the victim, and the one that cuts it. With more, other
    // idle connections would die too, and each would fail one later call
    // before the pool replaced it: true, but not what this test is about.
    let w = World::with_pool(PoolSettings {
        max_connections: 2,
        ..PoolSettings::default()
    })
    .await;
    let a = w.agent().await;
    let plot = w.plot().await;
    // Cut every other connection of this database, as a restart would.
    let victim = w.conn.begin().await.expect("begin");
    w.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
           WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await;
    let err = victim
        .execute_unprepared("SELECT 1")
        .await
        .map_err(DomainError::from)
        .expect_err("cut");
    assert!(matches!(err, DomainError::Unavailable(_)), "{err:?}");
    drop(victim);

    // The pool replaces the dead connections by itself.
    let mut last = None;
    for _ in 0..5 {
        match reserve(&w.conn, &w.policy, &a, plot).await.result {
            Ok(_) => {
                last = None;
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    assert!(last.is_none(), "did not recover: {last:?}");
    w.check().await;
}

#[tokio::test]
async fn unknown_ids_are_not_found_not_panics() {
    let w = World::new().await;
    let a = w.agent().await;
    let missing = ReservationId::new();
    for err in [
        reserve(&w.conn, &w.policy, &a, PropertyId::new())
            .await
            .result
            .expect_err("reserve"),
        reservations::release(&w.conn, &w.policy, &a, missing)
            .await
            .result
            .expect_err("release"),
        reservations::convert(&w.conn, &w.policy, &a, missing)
            .await
            .result
            .expect_err("convert"),
        reservations::extend(&w.conn, &w.policy, &w.manager, missing)
            .await
            .result
            .expect_err("extend"),
    ] {
        assert!(matches!(err, DomainError::NotFound(_)), "{err:?}");
    }
}
