//! Bulk changes of plots and their projects' tally (`plot_tally`: each
//! project's plots counted by status, kept row by row by deferred triggers at
//! each commit). A transaction that adds or changes many plots of a project
//! at once (an import, a benchmark's reset) skips the triggers and recounts
//! the project once before it commits: tens of milliseconds, where row by
//! row 100,000 plots cost half a minute at the commit.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement,
};

use crate::ProjectId;

/// A transaction that changes many plots of one project: the tally's
/// triggers skip it (`holdfast.tally` set to `recount` for it alone), and
/// [`Bulk::commit`] counts the project's plots again before it commits
/// (`plot_tally_recount`, which first locks the project's tally rows, so
/// that no other transaction's change is lost or counted twice).
pub struct Bulk {
    txn: DatabaseTransaction,
    project: ProjectId,
}

impl Bulk {
    pub async fn begin(db: &DatabaseConnection, project: ProjectId) -> Result<Bulk, DbErr> {
        let txn = crate::db::begin(db).await?;
        txn.execute_unprepared("SET LOCAL holdfast.tally = 'recount'")
            .await?;
        Ok(Bulk { txn, project })
    }

    /// The transaction, for the changes.
    pub fn txn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Counts the project's plots as the transaction sees them, and commits.
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT plot_tally_recount($1)",
                [self.project.0.into()],
            ))
            .await?;
        self.txn.commit().await
    }
}
