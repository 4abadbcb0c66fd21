//! A project's counts come from its tally (`plot_tally`, in shards kept by
//! triggers at each commit), whichever way plots come, change and go; the
//! counts agree with the plots one by one, and concurrent changes of one
//! project's plots in different shards write different rows.

use std::time::Duration;

use holdfast_domain::PropertyId;
use holdfast_domain::db::{PoolSettings, connect};
use holdfast_domain::reads::PlotCounts;
use holdfast_domain::reservations::{convert, release, reserve};
use holdfast_domain::tally::Bulk;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, TransactionTrait};

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

    // Holds begin in one session and end in another.
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

/// The shard each of `plots` counts in.
async fn shards(w: &World, plots: &[PropertyId]) -> Vec<i32> {
    let mut out = Vec::new();
    for plot in plots {
        out.push(
            w.count(&format!("SELECT plot_tally_shard('{plot}')::bigint"))
                .await as i32,
        );
    }
    out
}

/// A transaction that changed `plot` to WITHDRAWN, left open, with its
/// tally written (the deferred trigger fired now rather than at its commit).
async fn withdrawn_and_counted(
    s: &DatabaseConnection,
    plot: PropertyId,
) -> Result<DatabaseTransaction, sea_orm::DbErr> {
    let txn = s.begin().await?;
    txn.execute_unprepared(&format!(
        "UPDATE property SET status = 'WITHDRAWN' WHERE id = '{plot}'"
    ))
    .await?;
    txn.execute_unprepared("SET CONSTRAINTS ALL IMMEDIATE")
        .await?;
    Ok(txn)
}

/// The reason the tally has shards: four transactions change plots of one
/// project in four shards and write the tally, left open, and none waits for
/// another (each would fail after its 2 s lock wait if it did). Two plots
/// of one shard do wait: the shard is what two changes share.
#[tokio::test]
async fn plots_of_different_shards_change_at_once_and_plots_of_one_shard_wait() {
    let w = World::new().await;
    let plots = w.plots(65).await;
    let shard_of_plot = shards(&w, &plots).await;
    // 65 plots in 64 shards: two share one.
    let (a, b) = (0..plots.len())
        .flat_map(|i| (i + 1..plots.len()).map(move |j| (i, j)))
        .find(|&(i, j)| shard_of_plot[i] == shard_of_plot[j])
        .expect("two plots of one shard");
    let first_session = session(&w).await;
    let first = withdrawn_and_counted(&first_session, plots[a])
        .await
        .expect("the first");
    let second_session = session(&w).await;
    let second = withdrawn_and_counted(&second_session, plots[b]).await;
    assert!(
        second.is_err(),
        "the second waits for the first's shard row"
    );
    drop(second);
    first.rollback().await.expect("rollback");

    let mut apart = Vec::new();
    let mut seen = Vec::new();
    for (plot, shard) in plots.iter().zip(&shard_of_plot) {
        if !seen.contains(shard) && apart.len() < 4 {
            seen.push(*shard);
            apart.push(*plot);
        }
    }
    let mut open = Vec::new();
    for plot in &apart {
        let s = session(&w).await;
        let txn = withdrawn_and_counted(&s, *plot)
            .await
            .expect("no wait for another shard's row");
        open.push((s, txn));
    }
    // Nothing is counted before the commits, everything after.
    assert_eq!(w.counts().await, counts(65, 65, 0, 0, 0));
    for (_, txn) in open {
        txn.commit().await.expect("commit");
    }
    assert_eq!(w.counts().await, counts(65, 61, 0, 0, 4));

    w.check().await;
}

/// The tally is written at the commit, after every other lock a transaction
/// takes: a transaction that changed a plot and has not committed holds no
/// tally row (a release that hands a plot on locks the next agent's row
/// after the plot changed; holding a tally row then could deadlock with
/// that agent's own reserve). Only a sweep's batch takes them earlier, as
/// the last step of the statement its commit follows.
#[tokio::test]
async fn an_open_transaction_that_changed_a_plot_holds_no_tally_row() {
    let w = World::new().await;
    let plot = w.plot().await;
    let s = session(&w).await;
    let txn = s.begin().await.expect("begin");
    txn.execute_unprepared(&format!(
        "UPDATE property SET status = 'WITHDRAWN' WHERE id = '{plot}'"
    ))
    .await
    .expect("update");
    w.sql(&format!(
        "SELECT 1 FROM plot_tally WHERE project_id = '{}' FOR UPDATE NOWAIT",
        w.project
    ))
    .await;
    txn.commit().await.expect("commit");
    assert_eq!(w.counts().await, counts(1, 0, 0, 0, 1));
}

/// A bulk change skips the row-by-row count and counts the project once
/// before it commits; a change made meanwhile by another transaction is
/// neither lost nor counted twice.
#[tokio::test]
async fn a_bulk_change_counts_the_project_once_before_it_commits() {
    let w = World::new().await;
    let plots = w.plots(10).await;
    let bulk = Bulk::begin(&w.conn, w.project).await.expect("begin");
    bulk.txn()
        .execute_unprepared(&format!(
            "INSERT INTO property (id, workspace_id, project_id, code, status, updated_at) \
         SELECT rules.uuid7(), '{ws}', '{pr}', 'BULK-' || n, 'WITHDRAWN', now() \
         FROM generate_series(1, 500) n",
            ws = w.admin.workspace_id,
            pr = w.project,
        ))
        .await
        .expect("insert");
    // Meanwhile a reserve commits.
    let agent = w.agent().await;
    reserve(&w.conn, &w.policy, &agent, plots[0])
        .await
        .result
        .expect("reserved");
    bulk.commit().await.expect("recount and commit");
    assert_eq!(w.counts().await, counts(510, 9, 1, 0, 500));
    // The bulk mode ended with its transaction: the next change counts.
    let other = w.agent().await;
    reserve(&w.conn, &w.policy, &other, plots[1])
        .await
        .result
        .expect("reserved");
    assert_eq!(w.counts().await, counts(510, 8, 2, 0, 500));
    w.check().await;
}
