//! Bulk changes of plots and their projects' tally (`plot_tally`: each
//! project's plots counted by status, kept row by row by deferred triggers at
//! each commit). A transaction that adds or changes many plots of a project
//! at once (an import, a benchmark's reset) skips the triggers and recounts
//! the project once before it commits: tens of milliseconds, where row by
//! row 100,000 plots cost half a minute at the commit.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

use crate::ProjectId;

/// Makes the rest of the transaction `txn` skip the tally's triggers. Every
/// project whose plots it adds, removes or changes must then be
/// [`recount`]ed before it commits.
pub async fn count_in_bulk(txn: &impl ConnectionTrait) -> Result<(), DbErr> {
    txn.execute_unprepared("SET LOCAL holdfast.tally = 'recount'")
        .await?;
    Ok(())
}

/// Counts the plots of `project` again, as the transaction `txn` sees them,
/// into its tally (`plot_tally_recount`: it first locks the project's tally
/// rows, so that no other transaction's change is lost or counted twice).
pub async fn recount(txn: &impl ConnectionTrait, project: ProjectId) -> Result<(), DbErr> {
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT plot_tally_recount($1)",
        [project.0.into()],
    ))
    .await?;
    Ok(())
}
