//! A reserve (and a join of the line) sent in one round trip: the call
//! alone, in autocommit. It never waits for another call's lock, and never
//! commits long after its client sent it; where it would, it gives way to
//! the same call in a transaction of its own, and writes nothing itself.

use std::time::{Duration, Instant};

use holdfast_domain::db::{PoolSettings, connect};
use holdfast_domain::entities::PropertyStatus;
use holdfast_domain::line::{self, JoinRequest};
use holdfast_domain::reservations::reserve;
use holdfast_domain::{DomainError, Policy, PropertyId};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, TransactionTrait};

use crate::helpers::World;

/// How long the other transaction keeps the plot locked: many times the
/// one-round-trip call's own wait for a lock.
const HELD: Duration = Duration::from_millis(400);

/// The plot's row lock, taken by a transaction left open.
async fn lock_in_another_transaction(w: &World, plot: PropertyId) -> DatabaseTransaction {
    let other = w.conn.begin().await.expect("begin");
    other
        .execute_unprepared(&format!(
            "SELECT 1 FROM property WHERE id = '{plot}' FOR UPDATE"
        ))
        .await
        .expect("lock the plot");
    other
}

fn one_round_trip() -> Policy {
    Policy {
        one_round_trip: true,
        ..Policy::default()
    }
}

#[tokio::test]
async fn a_reserve_of_a_plot_another_transaction_has_locked_waits_for_it_in_a_transaction() {
    let w = World::new().await;
    let agent = w.agent().await;
    let plot = w.plot().await;
    let other = lock_in_another_transaction(&w, plot).await;

    let started = Instant::now();
    let (conn, policy) = (w.conn.clone(), one_round_trip());
    let call = tokio::spawn(async move { reserve(&conn, &policy, &agent, plot).await.result });
    tokio::time::sleep(HELD).await;
    other.commit().await.expect("unlock");
    let got = call.await.expect("join");
    // The call alone would have given up after its brief wait (BUSY); it
    // waited for the lock in a transaction instead, and reserved.
    let reserved = got.expect("reserved once the lock was free");
    assert!(started.elapsed() >= HELD, "{:?}", started.elapsed());
    assert_eq!(
        w.stored_property(plot).await.status,
        PropertyStatus::Reserved
    );
    assert_eq!(
        w.stored_reservation(reserved.reservation.id)
            .await
            .property_id,
        plot
    );
    w.check().await;
}

#[tokio::test]
async fn a_reserve_waiting_behind_another_reserve_of_the_plot_is_told_it_is_taken() {
    let w = World::new().await;
    let (first, second) = {
        let mut a = w.agents(2).await;
        (a.remove(0), a.remove(0))
    };
    let plot = w.plot().await;
    // The first agent's reserve, in a transaction that stays open a while.
    let blocker = w.conn.begin().await.expect("begin");
    blocker
        .execute_unprepared(&format!(
            "SELECT rules.reserve('{ws}', '{agent}', '{plot}', interval '1 hour', 0, \
               ROW(NULL, NULL, NULL), NULL, NULL)",
            ws = first.workspace_id,
            agent = first.user_id,
        ))
        .await
        .expect("the first reserve");
    let (conn, policy) = (w.conn.clone(), one_round_trip());
    let call = tokio::spawn(async move { reserve(&conn, &policy, &second, plot).await.result });
    tokio::time::sleep(HELD).await;
    blocker.commit().await.expect("commit the first reserve");
    // The second waited in its transaction, and read the plot as the first
    // left it.
    match call.await.expect("join") {
        Err(DomainError::PropertyUnavailable { status, .. }) => {
            assert_eq!(status, PropertyStatus::Reserved)
        }
        other => panic!("the plot was taken: {other:?}"),
    }
    assert_eq!(
        w.stored_property(plot).await.reserved_by_id,
        Some(first.user_id)
    );
    w.check().await;
}

#[tokio::test]
async fn a_join_of_a_locked_free_plot_waits_for_it_in_a_transaction() {
    let w = World::new().await;
    let agent = w.agent().await;
    let plot = w.plot().await;
    let other = lock_in_another_transaction(&w, plot).await;
    let (conn, policy) = (w.conn.clone(), one_round_trip());
    let call = tokio::spawn(async move {
        let request = JoinRequest {
            property_id: plot,
            buyer: None,
        };
        line::join_queue(&conn, &policy, (&agent).into(), &request)
            .await
            .result
    });
    tokio::time::sleep(HELD).await;
    other.rollback().await.expect("unlock");
    let entry = call.await.expect("join").expect("promoted at once");
    assert!(entry.reservation_id.is_some(), "{entry:?}");
    assert_eq!(
        w.stored_property(plot).await.status,
        PropertyStatus::Reserved
    );
    w.check().await;
}

#[tokio::test]
async fn a_one_round_trip_call_that_reaches_postgres_late_is_refused_and_writes_nothing() {
    let w = World::new().await;
    let agent = w.agent().await;
    let plot = w.plot().await;
    // As the domain sends it, but sent (by the client's clock) 6 s ago,
    // with 5 s allowed: held up in a silent link while its client gave up.
    let sent_late = format!(
        "SELECT rules.reserve('{ws}', '{agent}', '{plot}', interval '1 hour', 0, \
           ROW(NULL, NULL, NULL), NULL, NULL)::text AS answer \
         FROM rules.at_once(clock_timestamp() - interval '6 seconds', 5, 0.01)",
        ws = agent.workspace_id,
        agent = agent.user_id,
    );
    let err = w
        .conn
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sent_late))
        .await
        .expect_err("refused");
    assert_eq!(
        holdfast_domain::error::sqlstate(&err).as_deref(),
        Some("HF001"),
        "{err}"
    );
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) AS n FROM reservation WHERE property_id = '{plot}'"
        ))
        .await,
        0
    );
    assert_eq!(
        w.stored_property(plot).await.status,
        PropertyStatus::Available
    );
}

#[tokio::test]
async fn the_brief_lock_wait_of_a_one_round_trip_call_ends_with_it() {
    // One connection, so that the reserve and the read below share it.
    let w = World::with_pool(PoolSettings {
        max_connections: 1,
        ..PoolSettings::default()
    })
    .await;
    let agent = w.agent().await;
    let plot = w.plot().await;
    reserve(&w.conn, &one_round_trip(), &agent, plot)
        .await
        .result
        .expect("reserved");
    let row = w
        .conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_setting('lock_timeout') AS t",
        ))
        .await
        .expect("show")
        .expect("a row");
    let setting: String = row.try_get("", "t").expect("t");
    assert_eq!(setting, "3s", "the session's own lock_timeout is back");
}

#[tokio::test]
async fn a_client_gone_while_its_one_round_trip_call_would_wait_leaves_nothing_behind() {
    // A server killed while its reserve waits for a locked plot: the call
    // waited in a transaction, and died with its connection.
    let w = World::new().await;
    let agent = w.agent().await;
    let plot = w.plot().await;
    let other = lock_in_another_transaction(&w, plot).await;
    let url = w.url().to_owned();
    let call = tokio::spawn(async move {
        let conn = connect(&url, &PoolSettings::default())
            .await
            .expect("connect");
        reserve(&conn, &one_round_trip(), &agent, plot).await.result
    });
    // Wait until the call waits for the lock in its transaction (its
    // one-round-trip try, the statement with rules.at_once, gave way), then
    // drop it with its connection.
    let waiting = Instant::now();
    while w
        .count(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
               AND wait_event_type = 'Lock' AND state = 'active' \
               AND query LIKE '%rules.reserve(%' AND query NOT LIKE '%rules.at_once%'",
        )
        .await
        == 0
    {
        assert!(waiting.elapsed() < Duration::from_secs(10), "never waited");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    call.abort();
    let _ = call.await;
    other.rollback().await.expect("unlock");
    // Give PostgreSQL its client-connection check (1 s) and more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) AS n FROM reservation WHERE property_id = '{plot}'"
        ))
        .await,
        0,
        "the abandoned call wrote nothing"
    );
    assert_eq!(
        w.stored_property(plot).await.status,
        PropertyStatus::Available
    );
}
