//! Batch loaders, one per kind of lookup, so that a list of N items costs one
//! query per field instead of N (async-graphql's DataLoader collects the keys
//! of one request tick). Built per request: each is bound to the caller's
//! workspace, so no batch can ever reach another workspace's rows.

use std::collections::HashMap;
use std::sync::Arc;

use super::snapshot::{Conn, Reads};
use async_graphql::dataloader::{DataLoader, Loader};
use holdfast_domain::entities::{project, property, reservation, user};
use holdfast_domain::reads::{self, PlotCounts, QueueEntryNow};
use holdfast_domain::{
    DomainError, ProjectId, PropertyId, QueueEntryId, ReservationId, UserId, WorkspaceId,
};

/// Every loader of one request, reading where the request reads (one
/// snapshot for a query: `snapshot.rs`).
pub struct Loaders {
    reads: Reads,
    workspace: WorkspaceId,
}

impl Loaders {
    pub fn for_request(reads: Reads, workspace: WorkspaceId) -> DataLoader<Self> {
        DataLoader::new(Self { reads, workspace }, tokio::spawn)
    }

    async fn conn(&self) -> Result<Conn<'_>, DomainError> {
        Ok(self.reads.conn().await?)
    }
}

/// Key: the reservations an agent holds right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ActiveOfAgent(pub UserId);

/// Key: the reservation that holds a property right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ActiveOfProperty(pub PropertyId);

/// Key: how many entries wait in line for a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LineOf(pub PropertyId);

/// Key: a project's plots counted by status as of now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountsOf(pub ProjectId);

type Shared = Arc<DomainError>;

impl Loader<UserId> for Loaders {
    type Value = user::Model;
    type Error = Shared;

    async fn load(&self, keys: &[UserId]) -> Result<HashMap<UserId, user::Model>, Shared> {
        let rows =
            reads::users_by_ids(&self.conn().await?, self.workspace, keys.iter().copied()).await?;
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }
}

impl Loader<ProjectId> for Loaders {
    type Value = project::Model;
    type Error = Shared;

    async fn load(&self, keys: &[ProjectId]) -> Result<HashMap<ProjectId, project::Model>, Shared> {
        let rows =
            reads::projects_by_ids(&self.conn().await?, self.workspace, keys.iter().copied())
                .await?;
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }
}

impl Loader<PropertyId> for Loaders {
    type Value = property::Model;
    type Error = Shared;

    async fn load(
        &self,
        keys: &[PropertyId],
    ) -> Result<HashMap<PropertyId, property::Model>, Shared> {
        let rows =
            reads::properties_by_ids(&self.conn().await?, self.workspace, keys.iter().copied())
                .await?;
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }
}

impl Loader<ReservationId> for Loaders {
    type Value = reservation::Model;
    type Error = Shared;

    async fn load(
        &self,
        keys: &[ReservationId],
    ) -> Result<HashMap<ReservationId, reservation::Model>, Shared> {
        let rows =
            reads::reservations_by_ids(&self.conn().await?, self.workspace, keys.iter().copied())
                .await?;
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }
}

impl Loader<ActiveOfAgent> for Loaders {
    type Value = Vec<reservation::Model>;
    type Error = Shared;

    async fn load(
        &self,
        keys: &[ActiveOfAgent],
    ) -> Result<HashMap<ActiveOfAgent, Vec<reservation::Model>>, Shared> {
        let rows = reads::active_reservations_of_agents(
            &self.conn().await?,
            self.workspace,
            keys.iter().map(|k| k.0),
        )
        .await?;
        // Every agent asked for gets an answer, holding nothing included.
        let mut out: HashMap<ActiveOfAgent, Vec<reservation::Model>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for r in rows {
            out.entry(ActiveOfAgent(r.agent_id)).or_default().push(r);
        }
        Ok(out)
    }
}

impl Loader<ActiveOfProperty> for Loaders {
    type Value = reservation::Model;
    type Error = Shared;

    async fn load(
        &self,
        keys: &[ActiveOfProperty],
    ) -> Result<HashMap<ActiveOfProperty, reservation::Model>, Shared> {
        let rows = reads::active_reservations_of_properties(
            &self.conn().await?,
            self.workspace,
            keys.iter().map(|k| k.0),
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (ActiveOfProperty(r.property_id), r))
            .collect())
    }
}

impl Loader<CountsOf> for Loaders {
    type Value = PlotCounts;
    type Error = Shared;

    async fn load(&self, keys: &[CountsOf]) -> Result<HashMap<CountsOf, PlotCounts>, Shared> {
        let projects: Vec<ProjectId> = keys.iter().map(|k| k.0).collect();
        let counts = reads::plot_counts(&self.conn().await?, self.workspace, &projects).await?;
        Ok(counts.into_iter().map(|(k, v)| (CountsOf(k), v)).collect())
    }
}

impl Loader<LineOf> for Loaders {
    type Value = i64;
    type Error = Shared;

    async fn load(&self, keys: &[LineOf]) -> Result<HashMap<LineOf, i64>, Shared> {
        let properties: Vec<PropertyId> = keys.iter().map(|k| k.0).collect();
        let lengths = reads::line_lengths(&self.conn().await?, self.workspace, &properties).await?;
        Ok(lengths.into_iter().map(|(k, v)| (LineOf(k), v)).collect())
    }
}

impl Loader<QueueEntryId> for Loaders {
    type Value = QueueEntryNow;
    type Error = Shared;

    async fn load(
        &self,
        keys: &[QueueEntryId],
    ) -> Result<HashMap<QueueEntryId, QueueEntryNow>, Shared> {
        let rows =
            reads::queue_entries_by_ids(&self.conn().await?, self.workspace, keys.iter().copied())
                .await?;
        Ok(rows.into_iter().map(|r| (r.entry.id, r)).collect())
    }
}
