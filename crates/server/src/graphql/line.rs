//! The line behind a held plot, as the schema shows it: queue entries and
//! their statuses. Each wraps the domain's entry as it is now (with its
//! place in line) and resolves its links through the request's loaders.

use async_graphql::{Context, Enum, ID, Object, Result};
use chrono::{DateTime, Utc};
use holdfast_domain::reads::QueueEntryNow;

use super::context::{loaders, session};
use super::types::{Buyer, PropertyNode, ReservationNode, UserNode, id, present};
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(
    name = "QueueEntryStatus",
    remote = "holdfast_domain::entities::QueueEntryStatus"
)]
pub enum QueueEntryStatus {
    /// Waits in line for the property.
    Waiting,
    /// Became a hold when the holds and entries before it ended: see reservation.
    Promoted,
    /// Left the line: its agent or a manager took it out.
    Left,
    /// Passed over at its turn, because its agent could not take the hold (deactivated, or at the active-hold limit).
    Skipped,
    /// The property was sold or withdrawn while the entry waited.
    Closed,
}

#[derive(Clone)]
pub struct QueueEntryNode(pub QueueEntryNow);

#[Object(name = "QueueEntry")]
impl QueueEntryNode {
    async fn id(&self) -> ID {
        id(self.0.entry.id)
    }

    async fn property(&self, ctx: &Context<'_>) -> Result<PropertyNode> {
        let row = loaders(ctx)?
            .load_one(self.0.entry.property_id)
            .await
            .map_err(ApiError::from)?;
        Ok(PropertyNode(present("property", row)?))
    }

    async fn agent(&self, ctx: &Context<'_>) -> Result<UserNode> {
        let row = loaders(ctx)?
            .load_one(self.0.entry.agent_id)
            .await
            .map_err(ApiError::from)?;
        Ok(UserNode(present("user", row)?))
    }

    /// Who the place in line is for: shown to its agent, managers and admins; null for other agents.
    async fn buyer(&self, ctx: &Context<'_>) -> Result<Option<Buyer>> {
        let actor = session(ctx).await?.actor();
        if actor.user_id != self.0.entry.agent_id && !actor.role.is_manager() {
            return Ok(None);
        }
        Ok(self.0.entry.buyer().map(Buyer::from))
    }

    async fn status(&self) -> QueueEntryStatus {
        self.0.entry.status.into()
    }

    /// 1 for the next in line; null once the entry no longer waits.
    async fn position(&self) -> Option<i32> {
        self.0
            .position
            .map(|p| i32::try_from(p).unwrap_or(i32::MAX))
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.entry.created_at
    }

    async fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.0.entry.ended_at
    }

    /// The hold this entry became, once PROMOTED.
    async fn reservation(&self, ctx: &Context<'_>) -> Result<Option<ReservationNode>> {
        let Some(id) = self.0.entry.reservation_id else {
            return Ok(None);
        };
        let row = loaders(ctx)?.load_one(id).await.map_err(ApiError::from)?;
        Ok(row.map(ReservationNode))
    }
}
