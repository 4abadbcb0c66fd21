//! The schema's queries. Every read is scoped to the caller's workspace: an id
//! of another workspace reads as null, exactly like an id that does not exist.

use async_graphql::{Context, ID, Object, Result};
use holdfast_domain::reads::{self, PropertyFilter, QueueEntryFilter, ReservationFilter};
use holdfast_domain::{ProjectId, PropertyId, ReservationId, UserId};

use super::connection;
use super::context::{loaders, parse_id, read_conn, require_manager, session};
use super::line::{QueueEntryNode, QueueEntryStatus};
use super::types::{
    ProjectNode, PropertyNode, PropertyStatus, ReservationNode, ReservationStatus, UserNode,
};
use super::{pages, paging};
use crate::error::ApiError;

pub struct Query;

#[Object]
impl Query {
    /// The caller.
    async fn me(&self, ctx: &Context<'_>) -> Result<UserNode> {
        Ok(UserNode(session(ctx).await?.user.clone()))
    }

    async fn project(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ProjectNode>> {
        session(ctx).await?;
        let id: ProjectId = parse_id("project id", &id)?;
        let row = loaders(ctx)?.load_one(id).await.map_err(ApiError::from)?;
        Ok(row.map(ProjectNode))
    }

    /// In creation order. Archived projects are left out unless includeArchived is true; project(id) finds them either way.
    #[graphql(complexity = "paging::complexity(first, child_complexity)")]
    async fn projects(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(false)")] include_archived: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<connection::ProjectConnection> {
        let include_archived = include_archived.unwrap_or(false);
        Ok(pages::projects(ctx, include_archived, first, after)
            .await?
            .map(ProjectNode)
            .into())
    }

    async fn property(&self, ctx: &Context<'_>, id: ID) -> Result<Option<PropertyNode>> {
        session(ctx).await?;
        let id: PropertyId = parse_id("property id", &id)?;
        let row = loaders(ctx)?.load_one(id).await.map_err(ApiError::from)?;
        Ok(row.map(PropertyNode))
    }

    #[graphql(complexity = "paging::complexity(first, child_complexity)")]
    async fn properties(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        status: Option<PropertyStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<connection::PropertyConnection> {
        session(ctx).await?;
        let filter = PropertyFilter {
            project_id: project_id
                .as_ref()
                .map(|id| parse_id("project id", id))
                .transpose()?,
            status: status.map(Into::into),
        };
        Ok(pages::properties(ctx, filter, first, after)
            .await?
            .map(PropertyNode)
            .into())
    }

    async fn reservation(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ReservationNode>> {
        session(ctx).await?;
        let id: ReservationId = parse_id("reservation id", &id)?;
        let row = loaders(ctx)?.load_one(id).await.map_err(ApiError::from)?;
        Ok(row.map(ReservationNode))
    }

    /// Newest first.
    #[graphql(complexity = "paging::complexity(first, child_complexity)")]
    async fn reservations(
        &self,
        ctx: &Context<'_>,
        property_id: Option<ID>,
        agent_id: Option<ID>,
        status: Option<ReservationStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<connection::ReservationConnection> {
        session(ctx).await?;
        let filter = ReservationFilter {
            property_id: property_id
                .as_ref()
                .map(|id| parse_id::<PropertyId>("property id", id))
                .transpose()?,
            agent_id: agent_id
                .as_ref()
                .map(|id| parse_id::<UserId>("agent id", id))
                .transpose()?,
            status: status.map(Into::into),
        };
        Ok(pages::reservations(ctx, filter, first, after)
            .await?
            .map(ReservationNode)
            .into())
    }

    /// Newest first. Agents see their own entries; managers and admins see anyone's.
    #[graphql(complexity = "paging::complexity(first, child_complexity)")]
    async fn queue_entries(
        &self,
        ctx: &Context<'_>,
        property_id: Option<ID>,
        agent_id: Option<ID>,
        status: Option<QueueEntryStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<connection::QueueEntryConnection> {
        let actor = session(ctx).await?.actor();
        let asked: Option<UserId> = agent_id
            .as_ref()
            .map(|id| parse_id("agent id", id))
            .transpose()?;
        let agent_id = match asked {
            Some(agent) if agent != actor.user_id && !actor.role.is_manager() => {
                return Err(ApiError::Forbidden(
                    "an agent sees only their own queue entries".into(),
                )
                .into());
            }
            None if !actor.role.is_manager() => Some(actor.user_id),
            asked => asked,
        };
        let filter = QueueEntryFilter {
            property_id: property_id
                .as_ref()
                .map(|id| parse_id::<PropertyId>("property id", id))
                .transpose()?,
            agent_id,
            status: status.map(Into::into),
        };
        Ok(pages::queue_entries(ctx, filter, first, after)
            .await?
            .map(QueueEntryNode)
            .into())
    }

    /// Managers and admins only.
    async fn users(&self, ctx: &Context<'_>) -> Result<Vec<UserNode>> {
        let actor = require_manager(ctx).await?;
        let rows = reads::users(&read_conn(ctx).await?, actor.workspace_id)
            .await
            .map_err(ApiError::from)?;
        Ok(rows.into_iter().map(UserNode).collect())
    }
}
