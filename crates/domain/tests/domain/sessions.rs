//! What PostgreSQL does with a session whose client froze: it ends it, so a
//! plot is never held for long by a client that stopped talking.

use std::time::{Duration, Instant};

use holdfast_domain::DomainError;
use holdfast_domain::db::PoolSettings;
use holdfast_domain::reservations::reserve;
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

use crate::helpers::World;

async fn show(w: &World, setting: &str) -> String {
    w.conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SHOW {setting}"),
        ))
        .await
        .expect("SHOW")
        .expect("a row")
        .try_get("", setting)
        .expect(setting)
}

#[tokio::test]
async fn every_session_carries_the_bounds_that_end_a_frozen_client() {
    let w = World::new().await;
    for (setting, value) in [
        ("lock_timeout", "3s"),
        ("statement_timeout", "30s"),
        ("idle_in_transaction_session_timeout", "5s"),
        ("tcp_keepalives_idle", "5"),
        ("tcp_keepalives_interval", "2"),
        ("tcp_keepalives_count", "3"),
        // An integer setting in milliseconds, shown without its unit.
        ("tcp_user_timeout", "10000"),
        ("client_connection_check_interval", "1s"),
    ] {
        assert_eq!(show(&w, setting).await, value, "{setting}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_whose_client_froze_is_ended_by_postgres_and_its_plot_is_free() {
    let w = World::with_pool(PoolSettings {
        idle_in_transaction_timeout: Duration::from_millis(500),
        // Longer than the test: only the end of the frozen session frees the plot.
        lock_timeout: Duration::from_secs(20),
        ..PoolSettings::default()
    })
    .await;
    let a = w.agent().await;
    let plot = w.plot().await;
    let frozen = w.conn.begin().await.expect("begin");
    frozen
        .execute_unprepared(&format!(
            "SELECT 1 FROM property WHERE id = '{plot}' FOR UPDATE"
        ))
        .await
        .expect("lock the plot");

    // Its client says nothing more; a reserve of the plot waits for the lock.
    let started = Instant::now();
    reserve(&w.conn, &w.policy, &a, plot)
        .await
        .result
        .expect("the plot is free once PostgreSQL ended the frozen session");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");

    let err = frozen
        .commit()
        .await
        .map(|_| ())
        .map_err(DomainError::from)
        .expect_err("the frozen session is gone");
    assert!(matches!(err, DomainError::Unavailable(_)), "{err:?}");
}
