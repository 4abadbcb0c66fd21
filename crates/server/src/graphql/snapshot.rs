//! One moment per answer. Every read of one query operation (the loaders'
//! batches, the pages, the lists) runs in ONE `REPEATABLE READ, READ ONLY`
//! transaction, begun at its first read, so a property's status, its holder,
//! its active reservation, its line and its project's counts always agree
//! with each other: a release that commits while the answer is being read is
//! either wholly in it or wholly out of it. In such a transaction the hold
//! rules judge "now" at the moment it began (the SQL function `rules.now()`),
//! so a hold that lapses while the answer is read does not lapse half-way
//! through it either.
//!
//! A mutation keeps its own locking transactions; what its answer reads
//! comes after its commit, each read on its own, so that the second of two
//! mutations in one request is not read from a moment before it committed.
//! Operations over the WebSocket read the same way (their loaders serve the
//! whole connection).

use std::sync::Arc;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, IsolationLevel, QueryResult, Statement,
};
use tokio::sync::OnceCell;

/// Where one request's reads go; cheap to clone.
#[derive(Clone)]
pub enum Reads {
    /// A query operation's one transaction.
    Snapshot(Arc<Snapshot>),
    /// Each read on its own: a mutation's answer, a subscription's events.
    Each(DatabaseConnection),
}

/// A transaction begun at the first read that needs it, rolled back when the
/// request's last reader drops it (it writes nothing).
pub struct Snapshot {
    db: DatabaseConnection,
    txn: OnceCell<DatabaseTransaction>,
}

impl Reads {
    /// The reads of the operation `request` runs: one snapshot for a query,
    /// each read on its own otherwise (and when the document did not parse:
    /// the schema refuses it before anything is read).
    pub fn for_request(db: DatabaseConnection, request: &mut async_graphql::Request) -> Self {
        let name = request.operation_name.clone();
        let is_query = request
            .parsed_query()
            .ok()
            .and_then(|doc| operation_type(doc, name.as_deref()))
            == Some(OperationType::Query);
        if is_query {
            Self::Snapshot(Arc::new(Snapshot {
                db,
                txn: OnceCell::new(),
            }))
        } else {
            Self::Each(db)
        }
    }

    /// The connection to read on now.
    pub async fn conn(&self) -> Result<Conn<'_>, DbErr> {
        match self {
            Self::Each(db) => Ok(Conn::Each(db)),
            Self::Snapshot(snapshot) => {
                let txn = snapshot
                    .txn
                    .get_or_try_init(|| {
                        holdfast_domain::db::begin_with(
                            &snapshot.db,
                            Some(IsolationLevel::RepeatableRead),
                            Some(AccessMode::ReadOnly),
                        )
                    })
                    .await?;
                Ok(Conn::Snapshot(txn))
            }
        }
    }
}

/// The type of the operation a request names (or its only one).
fn operation_type(doc: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// A connection to read on: the request's snapshot or the pool.
pub enum Conn<'a> {
    Snapshot(&'a DatabaseTransaction),
    Each(&'a DatabaseConnection),
}

#[sea_orm::prelude::async_trait::async_trait]
impl ConnectionTrait for Conn<'_> {
    fn get_database_backend(&self) -> DbBackend {
        match self {
            Conn::Snapshot(c) => c.get_database_backend(),
            Conn::Each(c) => c.get_database_backend(),
        }
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        match self {
            Conn::Snapshot(c) => c.execute_raw(stmt).await,
            Conn::Each(c) => c.execute_raw(stmt).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        match self {
            Conn::Snapshot(c) => c.execute_unprepared(sql).await,
            Conn::Each(c) => c.execute_unprepared(sql).await,
        }
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match self {
            Conn::Snapshot(c) => c.query_one_raw(stmt).await,
            Conn::Each(c) => c.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            Conn::Snapshot(c) => c.query_all_raw(stmt).await,
            Conn::Each(c) => c.query_all_raw(stmt).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(query: &str, name: Option<&str>) -> Option<OperationType> {
        let doc = async_graphql::parser::parse_query(query).expect("parses");
        operation_type(&doc, name)
    }

    #[test]
    fn the_operation_a_request_runs_is_found_by_name_or_as_the_only_one() {
        assert_eq!(op("{ me { id } }", None), Some(OperationType::Query));
        assert_eq!(
            op("mutation M { a } query Q { b }", Some("Q")),
            Some(OperationType::Query)
        );
        assert_eq!(
            op("mutation M { a } query Q { b }", Some("M")),
            Some(OperationType::Mutation)
        );
        assert_eq!(op("mutation M { a } query Q { b }", None), None);
        assert_eq!(op("query Q { b }", Some("Q")), Some(OperationType::Query));
        // No such operation: the schema refuses the request before any read.
        assert_eq!(op("query Q { b }", Some("Other")), None);
    }
}
