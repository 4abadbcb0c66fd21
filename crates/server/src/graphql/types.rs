//! The schema's object types and enums. Entities do not derive GraphQL
//! types (the domain knows nothing of transport): each type here wraps a
//! domain model and resolves its links through the request's loaders.

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use holdfast_domain::entities::{project, property, reservation, user};
use holdfast_domain::reads::{self, PropertyFilter, ReservationFilter};

use super::connection;
use super::context::{loaders, session};
use super::inventory::Decimal;
use super::line::QueueEntryNode;
use super::loaders::{ActiveOfAgent, ActiveOfProperty, CountsOf, LineOf};
use super::{pages, paging};
use crate::error::{ApiError, ApiResult};
use holdfast_queue::HoldEvent;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "Role", remote = "holdfast_domain::entities::Role")]
pub enum Role {
    Admin,
    Manager,
    SalesAgent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(
    name = "PropertyStatus",
    remote = "holdfast_domain::entities::PropertyStatus"
)]
pub enum PropertyStatus {
    Available,
    Reserved,
    Sold,
    /// Taken off the market by a manager: it cannot be reserved or queued for.
    Withdrawn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(
    name = "ReservationStatus",
    remote = "holdfast_domain::entities::ReservationStatus"
)]
pub enum ReservationStatus {
    /// Holds its property right now.
    Active,
    /// Ended early by its agent or a manager.
    Released,
    /// Ran out of time.
    Expired,
    /// Became a sale; its property is SOLD.
    Converted,
}

pub fn id(uuid: impl std::fmt::Display) -> ID {
    ID(uuid.to_string())
}

fn count(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A row the caller's workspace must have, because another row points at it.
pub fn present<T>(what: &'static str, row: Option<T>) -> ApiResult<T> {
    row.ok_or(ApiError::Domain(holdfast_domain::DomainError::NotFound(
        what,
    )))
}

#[derive(Clone)]
pub struct UserNode(pub user::Model);

#[Object(name = "User")]
impl UserNode {
    async fn id(&self) -> ID {
        id(self.0.id)
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn email(&self) -> &str {
        &self.0.email
    }

    async fn role(&self) -> Role {
        self.0.role.into()
    }

    /// False once an admin or an operator deactivated the user: their tokens no longer work.
    async fn active(&self) -> bool {
        self.0.active
    }

    /// The user's reservations that hold a property right now.
    async fn active_reservations(&self, ctx: &Context<'_>) -> Result<Vec<ReservationNode>> {
        let rows = loaders(ctx)?
            .load_one(ActiveOfAgent(self.0.id))
            .await
            .map_err(ApiError::from)?
            .unwrap_or_default();
        Ok(rows.into_iter().map(ReservationNode).collect())
    }
}

#[derive(Clone)]
pub struct ProjectNode(pub project::Model);

impl ProjectNode {
    async fn counts(&self, ctx: &Context<'_>) -> Result<reads::PlotCounts> {
        Ok(loaders(ctx)?
            .load_one(CountsOf(self.0.id))
            .await
            .map_err(ApiError::from)?
            .unwrap_or_default())
    }
}

#[Object(name = "Project")]
impl ProjectNode {
    async fn id(&self) -> ID {
        id(self.0.id)
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn total_plots(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(count(self.counts(ctx).await?.total))
    }

    /// Always equal to the number of this project's properties whose status reads AVAILABLE now.
    async fn available_plots(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(count(self.counts(ctx).await?.available))
    }

    async fn reserved_plots(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(count(self.counts(ctx).await?.reserved))
    }

    async fn sold_plots(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(count(self.counts(ctx).await?.sold))
    }

    /// ISO 4217 code of the prices of this project's properties, for example INR or EUR.
    async fn currency(&self) -> Option<&str> {
        self.0.currency.as_deref()
    }

    /// An archived project is left out of projects() and its properties cannot be reserved.
    async fn archived(&self) -> bool {
        self.0.archived
    }

    #[graphql(complexity = "paging::complexity(first, child_complexity)")]
    async fn properties(
        &self,
        ctx: &Context<'_>,
        status: Option<PropertyStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<connection::PropertyConnection> {
        let filter = PropertyFilter {
            project_id: Some(self.0.id),
            status: status.map(Into::into),
        };
        Ok(pages::properties(ctx, filter, first, after)
            .await?
            .map(PropertyNode)
            .into())
    }
}

#[derive(Clone)]
pub struct PropertyNode(pub property::Model);

#[Object(name = "Property")]
impl PropertyNode {
    async fn id(&self) -> ID {
        id(self.0.id)
    }

    /// The plot's code, unique within its project (for example A-017).
    async fn code(&self) -> &str {
        &self.0.code
    }

    async fn project(&self, ctx: &Context<'_>) -> Result<ProjectNode> {
        let row = loaders(ctx)?
            .load_one(self.0.project_id)
            .await
            .map_err(ApiError::from)?;
        Ok(ProjectNode(present("project", row)?))
    }

    /// The status as of now: a reservation whose time has run out never reads RESERVED.
    async fn status(&self) -> PropertyStatus {
        self.0.status.into()
    }

    async fn reserved_by(&self, ctx: &Context<'_>) -> Result<Option<UserNode>> {
        let Some(user) = self.0.reserved_by_id else {
            return Ok(None);
        };
        let row = loaders(ctx)?.load_one(user).await.map_err(ApiError::from)?;
        Ok(row.map(UserNode))
    }

    async fn reserved_until(&self) -> Option<DateTime<Utc>> {
        self.0.reserved_until
    }

    /// The plot's price, in its project's currency; null when it has none.
    async fn price(&self) -> Result<Option<Decimal>> {
        Ok(Decimal::stored(self.0.price.as_deref())?)
    }

    async fn active_reservation(&self, ctx: &Context<'_>) -> Result<Option<ReservationNode>> {
        let row = loaders(ctx)?
            .load_one(ActiveOfProperty(self.0.id))
            .await
            .map_err(ApiError::from)?;
        Ok(row.map(ReservationNode))
    }

    /// How many entries wait in line for this property now.
    async fn queue_length(&self, ctx: &Context<'_>) -> Result<i32> {
        let n = loaders(ctx)?
            .load_one(LineOf(self.0.id))
            .await
            .map_err(ApiError::from)?
            .unwrap_or_default();
        Ok(count(n))
    }

    /// The entries that wait now, first in line first.
    #[graphql(complexity = "paging::complexity(first, child_complexity)")]
    async fn queue(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<connection::QueueEntryConnection> {
        Ok(pages::line(ctx, self.0.id, first, after)
            .await?
            .map(QueueEntryNode)
            .into())
    }

    /// Every reservation this property has had, newest first.
    #[graphql(complexity = "paging::complexity(first, child_complexity)")]
    async fn reservations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<connection::ReservationConnection> {
        let filter = ReservationFilter {
            property_id: Some(self.0.id),
            ..Default::default()
        };
        Ok(pages::reservations(ctx, filter, first, after)
            .await?
            .map(ReservationNode)
            .into())
    }
}

#[derive(Clone)]
pub struct ReservationNode(pub reservation::Model);

#[Object(name = "Reservation")]
impl ReservationNode {
    async fn id(&self) -> ID {
        id(self.0.id)
    }

    async fn property(&self, ctx: &Context<'_>) -> Result<PropertyNode> {
        let row = loaders(ctx)?
            .load_one(self.0.property_id)
            .await
            .map_err(ApiError::from)?;
        Ok(PropertyNode(present("property", row)?))
    }

    async fn agent(&self, ctx: &Context<'_>) -> Result<UserNode> {
        let row = loaders(ctx)?
            .load_one(self.0.agent_id)
            .await
            .map_err(ApiError::from)?;
        Ok(UserNode(present("user", row)?))
    }

    /// The status as of now: an ACTIVE reservation past its expiresAt reads EXPIRED.
    async fn status(&self) -> ReservationStatus {
        self.0.status.into()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }

    /// When the end was recorded: by the person who released or converted it, or,
    /// for one that ran out of time, by the release job, the sweep or a takeover.
    /// So for an expired reservation it trails expiresAt by the release lag, and is
    /// null until something has recorded it (while status already reads EXPIRED).
    async fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.0.ended_at
    }

    /// Who ended it: null while active, and when it expired.
    async fn ended_by(&self, ctx: &Context<'_>) -> Result<Option<UserNode>> {
        let Some(user) = self.0.ended_by_id else {
            return Ok(None);
        };
        let row = loaders(ctx)?.load_one(user).await.map_err(ApiError::from)?;
        Ok(row.map(UserNode))
    }

    async fn extension_count(&self) -> i32 {
        self.0.extension_count
    }

    /// The property's price when the hold began; null when it had none.
    async fn price_at_reservation(&self) -> Result<Option<Decimal>> {
        Ok(Decimal::stored(self.0.price_at_reservation.as_deref())?)
    }

    /// Whether its agent has been warned that the hold's current end is near (an EXPIRING event was sent); an extension makes it false until the next warning. For a board opened after the event.
    async fn expiry_warned(&self) -> bool {
        self.0.warned_version == Some(self.0.version)
    }

    /// Who the hold is for: shown to its agent, managers and admins; null for other agents.
    async fn buyer(&self, ctx: &Context<'_>) -> Result<Option<Buyer>> {
        if !may_see_details(ctx, &self.0).await? {
            return Ok(None);
        }
        Ok(self.0.buyer().map(Buyer::from))
    }

    /// The queue entry this hold came from, if it came from the line.
    async fn queue_entry(&self, ctx: &Context<'_>) -> Result<Option<QueueEntryNode>> {
        load_entry(ctx, self.0.queue_entry_id).await
    }

    /// A note on the hold: shown to its agent, managers and admins; null for other agents.
    async fn note(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        if !may_see_details(ctx, &self.0).await? {
            return Ok(None);
        }
        Ok(self.0.note.as_deref())
    }
}

/// Whether the caller may see who a hold is for: its agent, managers and
/// admins may; other agents may not.
async fn may_see_details(ctx: &Context<'_>, r: &reservation::Model) -> Result<bool> {
    let actor = session(ctx).await?.actor();
    Ok(actor.user_id == r.agent_id || actor.role.is_manager())
}

/// The person a hold is for. Visible to its agent, managers and admins; null for other agents.
#[derive(SimpleObject)]
pub struct Buyer {
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
}

impl From<holdfast_domain::Buyer> for Buyer {
    fn from(b: holdfast_domain::Buyer) -> Self {
        Self {
            name: b.name,
            phone: b.phone,
            email: b.email,
        }
    }
}

/// Who a hold (or a place in line) is for: a name, and optionally a phone and an email.
#[derive(InputObject)]
pub struct BuyerInput {
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
}

impl From<BuyerInput> for holdfast_domain::Buyer {
    fn from(b: BuyerInput) -> Self {
        Self {
            name: b.name,
            phone: b.phone,
            email: b.email,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "HoldEventKind", remote = "holdfast_queue::HoldEventKind")]
pub enum HoldEventKind {
    /// The hold ends within HOLDFAST_EXPIRY_WARNING.
    Expiring,
    /// The hold ran out.
    Expired,
    /// Its agent or a manager released it.
    Released,
    Extended,
    Converted,
    /// A queue entry became this hold.
    Promoted,
    /// A hold began by reserveProperty (a hold from the line is PROMOTED).
    Reserved,
    /// A queue entry ended without becoming a hold (SKIPPED or CLOSED).
    QueueEnded,
}

/// An event of a hold: what the holdEvents subscription delivers. Its
/// reservation is read when it is delivered, as it is then.
pub struct HoldEventNode(pub HoldEvent);

#[Object(name = "HoldEvent")]
impl HoldEventNode {
    async fn kind(&self) -> HoldEventKind {
        self.0.kind.into()
    }

    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }

    async fn reservation(&self, ctx: &Context<'_>) -> Result<Option<ReservationNode>> {
        let Some(id) = self.0.reservation_id else {
            return Ok(None);
        };
        let row = loaders(ctx)?.load_one(id).await.map_err(ApiError::from)?;
        Ok(row.map(ReservationNode))
    }

    async fn queue_entry(&self, ctx: &Context<'_>) -> Result<Option<QueueEntryNode>> {
        load_entry(ctx, self.0.queue_entry_id).await
    }
}

/// A queue entry by id, if there is one.
async fn load_entry(
    ctx: &Context<'_>,
    id: Option<holdfast_domain::QueueEntryId>,
) -> Result<Option<QueueEntryNode>> {
    let Some(id) = id else {
        return Ok(None);
    };
    let row = loaders(ctx)?.load_one(id).await.map_err(ApiError::from)?;
    Ok(row.map(QueueEntryNode))
}

/// A new user, and their token.
#[derive(SimpleObject)]
pub struct CreatedUser {
    pub user: UserNode,
    /// A bearer token for the new user; shown once.
    pub token: String,
}

/// A status change of a property: what the live-updates subscription
/// delivers. `property` is the property as it was right after the change.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct PropertyChange {
    #[graphql(skip)]
    pub property: property::Model,
    pub previous_status: PropertyStatus,
    pub status: PropertyStatus,
    pub at: DateTime<Utc>,
}

#[ComplexObject]
impl PropertyChange {
    async fn property(&self) -> PropertyNode {
        PropertyNode(self.property.clone())
    }
}
