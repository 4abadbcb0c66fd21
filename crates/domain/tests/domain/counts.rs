//! A project's counts come from its tally (`plot_tally`, in shards kept by
//! triggers), whichever way plots come, change and go; the counts agree
//! with the plots one by one, and concurrent changes of one project's plots
//! in different sessions write different rows.

use std::time::Duration;

use holdfast_domain::db::{PoolSettings, connect};
use holdfast_domain::reads::PlotCounts;
use holdfast_domain::reservations::{convert, release, reserve};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, Statement,
    TransactionTrait,
};

use crate::helpers::World;

fn counts(total: i64, available: i64, reserved: i64, sold: i64, withdrawn: i64) -> PlotCounts {
    PlotCounts {
        total,
        available,
        reserved,
        sold,
        withdrawn,
    }
}

/// One more session of the world's database, on a pool of one connection.
async fn session(w: &World) -> DatabaseConnection {
    let settings = PoolSettings {
        max_connections: 1,
        lock_timeout: Duration::from_secs(2),
        ..PoolSettings::default()
    };
    connect(w.url(), &settings).await.expect("connect")
}

async fn shard_of(db: &impl ConnectionTrait) -> i32 {
    db.query_one_raw(Statement::from_string(
        DbBackend::Postgres,
        "SELECT pg_backend_pid() % 64",
    ))
    .await
    .expect("pid")
    .expect("a row")
    .try_get_by_index::<i32>(0)
    .expect("a shard")
}

#[tokio::test]
async fn a_project_counts_its_plots_however_they_are_added_changed_moved_or_removed() {
    let w = World::new().await;
    let plots = w.plots(30).await;
    assert_eq!(w.counts().await, counts(30, 30, 0, 0, 0));

    // Plots written in SQL directly, many to a statement, in any status.
    w.sql(&format!(
        "INSERT INTO property (id, workspace_id, project_id, code, status, updated_at) \
         SELECT rules.uuid7(), '{ws}', '{pr}', 'SQL-' || n, \
                CASE WHEN n <= 5 THEN 'WITHDRAWN' ELSE 'AVAILABLE' END, now() \
         FROM generate_series(1, 20) n",
        ws = w.admin.workspace_id,
        pr = w.project,
    ))
    .await;
    assert_eq!(w.counts().await, counts(50, 45, 0, 0, 5));
    w.check().await;

    // Holds begin in one session and end in others: the shards differ, the
    // sums do not.
    let agent = w.agent().await;
    let mut holds = Vec::new();
    for plot in &plots[..4] {
        let hold = reserve(&w.conn, &w.policy, &agent, *plot)
            .await
            .result
            .expect("reserved");
        holds.push(hold.reservation.id);
    }
    assert_eq!(w.counts().await, counts(50, 41, 4, 0, 5));
    let other = session(&w).await;
    release(&other, &w.policy, &agent, holds[0])
        .await
        .result
        .expect("released");
    convert(&other, &w.policy, &w.manager, holds[1])
        .await
        .result
        .expect("sold");
    assert_eq!(w.counts().await, counts(50, 42, 2, 1, 5));
    w.check().await;

    // A change of anything but status or project writes no tally row (every
    // row keeps the transaction id that wrote it).
    let writers = "SELECT sum(xmin::text::bigint)::bigint FROM plot_tally";
    let before = w.count(writers).await;
    w.sql("UPDATE property SET updated_at = now() WHERE code LIKE 'SQL-%'")
        .await;
    assert_eq!(w.count(writers).await, before);
    assert_eq!(w.counts().await, counts(50, 42, 2, 1, 5));

    // Removed, and moved to another project.
    w.sql("DELETE FROM property WHERE code LIKE 'SQL-%' AND code NOT IN ('SQL-1', 'SQL-7')")
        .await;
    assert_eq!(w.counts().await, counts(32, 28, 2, 1, 1));
    let hillside = w.workspace.add_project(&w.conn, "Hillside").await;
    w.sql(&format!(
        "UPDATE property SET project_id = '{hillside}' WHERE code IN ('SQL-1', 'SQL-7')"
    ))
    .await;
    assert_eq!(w.counts().await, counts(30, 27, 2, 1, 0));
    let theirs = holdfast_domain::reads::plot_counts(&w.conn, w.admin.workspace_id, &[hillside])
        .await
        .expect("counts")[&hillside];
    assert_eq!(theirs, counts(2, 1, 0, 0, 1));
    // The audit compares every project's tally with its plots.
    w.check().await;
}

#[tokio::test]
async fn a_project_without_plots_counts_zero_everywhere() {
    let w = World::new().await;
    assert_eq!(w.counts().await, PlotCounts::default());
}

/// The reason the tally has shards: four sessions of different shards each
/// change a plot of one project in a transaction left open, and none waits
/// for another (each would fail after its 2 s lock wait if it did).
#[tokio::test]
async fn sessions_of_different_shards_change_one_project_without_waiting_for_each_other() {
    let w = World::new().await;
    let plots = w.plots(4).await;
    let mut sessions = Vec::new();
    let mut shards = Vec::new();
    while sessions.len() < 4 {
        let s = session(&w).await;
        let shard = shard_of(&s).await;
        if !shards.contains(&shard) {
            shards.push(shard);
            sessions.push(s);
        }
    }
    let mut open: Vec<DatabaseTransaction> = Vec::new();
    for (s, plot) in sessions.iter().zip(&plots) {
        let txn = s.begin().await.expect("begin");
        txn.execute_unprepared(&format!(
            "UPDATE property SET status = 'WITHDRAWN' WHERE id = '{plot}'"
        ))
        .await
        .expect("no wait for another session's shard");
        open.push(txn);
    }
    // Nothing is counted before the commits, everything after.
    assert_eq!(w.counts().await, counts(4, 4, 0, 0, 0));
    for txn in open {
        txn.commit().await.expect("commit");
    }
    assert_eq!(w.counts().await, counts(4, 0, 0, 0, 4));
    let shards: Vec<String> = shards.iter().map(i32::to_string).collect();
    assert_eq!(
        w.count(&format!(
            "SELECT count(*) FROM plot_tally WHERE project_id = '{}' AND shard IN ({})",
            w.project,
            shards.join(", ")
        ))
        .await,
        4,
        "one row for each session's shard"
    );
    w.check().await;
}
