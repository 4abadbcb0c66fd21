//! A transaction whose `BEGIN` is cut half-way (its caller dropped while the
//! link to PostgreSQL is silent) leaves its pooled connection out of any
//! transaction, so that a later write in autocommit on it commits.

use std::time::Duration;

use holdfast_domain::db::{self, PoolSettings};
use holdfast_testkit::{TcpProxy, TestDb};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_begin_cut_half_way_leaves_no_transaction_open_on_its_connection() {
    let test_db = TestDb::new().await;
    let link = TcpProxy::postgres().await;
    let through_link = link.postgres_url(&test_db.url);
    // One connection, so that the write below goes where the BEGIN went.
    let pool = db::connect(
        &through_link,
        &PoolSettings {
            max_connections: 1,
            ..PoolSettings::default()
        },
    )
    .await
    .expect("connect");
    pool.execute_unprepared("SELECT 1").await.expect("warm up");
    // The connection goes back to the pool after a ping of its own: let it,
    // so that the stall below cuts the BEGIN and not the wait for the pool.
    tokio::time::sleep(Duration::from_millis(300)).await;

    link.stall();
    let cut = tokio::time::timeout(Duration::from_millis(300), db::begin(&pool)).await;
    assert!(cut.is_err(), "the BEGIN waits on the silent link");
    link.resume();

    // A write in autocommit on the same connection, then a look from
    // another connection: committed, not left inside the cut transaction.
    pool.execute_unprepared("CREATE TABLE written_after_the_cut (n int)")
        .await
        .expect("write");
    let direct = test_db.connect().await;
    let seen: i64 = direct
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM pg_tables WHERE tablename = 'written_after_the_cut'",
        ))
        .await
        .expect("look")
        .expect("a row")
        .try_get("", "n")
        .expect("n");
    assert_eq!(seen, 1, "the write after the cut BEGIN committed");
}
