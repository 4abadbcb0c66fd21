//! A project's counts: how many plots it has is kept by triggers
//! (`project.plot_count`) whichever way plots come and go, and the counts by
//! status read from it and from the index agree with the plots one by one.

use holdfast_domain::reads::PlotCounts;
use holdfast_domain::reservations::reserve;

use crate::helpers::World;

/// The project's stored plot count.
async fn plot_count(w: &World) -> i64 {
    w.count(&format!(
        "SELECT plot_count FROM project WHERE id = '{}'",
        w.project
    ))
    .await
}

#[tokio::test]
async fn a_project_counts_its_plots_however_they_are_added_moved_or_removed() {
    let w = World::new().await;
    assert_eq!(plot_count(&w).await, 0);
    let plots = w.plots(30).await;
    assert_eq!(plot_count(&w).await, 30);

    // Plots written in SQL directly, many to a statement, count too.
    w.sql(&format!(
        "INSERT INTO property (id, workspace_id, project_id, code, status, updated_at) \
         SELECT rules.uuid7(), '{ws}', '{pr}', 'SQL-' || n, 'AVAILABLE', now() \
         FROM generate_series(1, 20) n",
        ws = w.admin.workspace_id,
        pr = w.project,
    ))
    .await;
    assert_eq!(plot_count(&w).await, 50);

    // A hold changes a plot's status, never the count.
    let agent = w.agent().await;
    reserve(&w.conn, &w.policy, &agent, plots[0])
        .await
        .result
        .expect("reserved");
    assert_eq!(plot_count(&w).await, 50);
    assert_eq!(
        w.counts().await,
        PlotCounts {
            total: 50,
            available: 49,
            reserved: 1,
            sold: 0,
            withdrawn: 0
        }
    );

    // Removed, and moved to another project.
    w.sql("DELETE FROM property WHERE code LIKE 'SQL-%' AND code <> 'SQL-1'")
        .await;
    assert_eq!(plot_count(&w).await, 31);
    let other = w.workspace.add_project(&w.conn, "Hillside").await;
    w.sql(&format!(
        "UPDATE property SET project_id = '{other}' WHERE code = 'SQL-1'"
    ))
    .await;
    assert_eq!(plot_count(&w).await, 30);
    assert_eq!(
        w.count(&format!(
            "SELECT plot_count FROM project WHERE id = '{other}'"
        ))
        .await,
        1
    );
    // The audit compares every project's count with its plots.
    w.check().await;
}

#[tokio::test]
async fn a_project_without_plots_counts_zero_everywhere() {
    let w = World::new().await;
    assert_eq!(w.counts().await, PlotCounts::default());
}
