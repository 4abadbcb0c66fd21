//! The schema's mutations. Roles and ownership are the domain's to enforce;
//! this layer authenticates, parses ids, commits within the request's
//! deadline (`deadline.rs`), hands each write's effects to the outbox after
//! the commit, and counts outcomes.

use std::time::Duration;

use async_graphql::{Context, ID, Object, Result};
use holdfast_domain::line::{self, JoinRequest};
use holdfast_domain::{
    DomainError, Hold, ProjectId, QueueEntryId, ReserveRequest, Written, directory, reservations,
};

use super::context::{Services, actor, caller, loaders, parse_id, services};
use super::line::QueueEntryNode;
use super::types::{
    BuyerInput, CreatedUser, ProjectNode, PropertyNode, ReservationNode, Role, UserNode, present,
};
use crate::deadline::commit_in_time;
use crate::error::ApiError;
use crate::{auth, metrics};

/// How long the token handed out with a new user lasts.
pub const NEW_USER_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The mutations of holds and the line, and the set-up that came with them
/// (projects, plots, users); the schema merges it with the others.
#[derive(Default)]
pub struct HoldMutation;

#[Object]
impl HoldMutation {
    /// Reserve an available property for the caller for the configured hold time (24 hours by default), for a buyer with a note. A retry with the idempotency key of an earlier call (the same agent, within 24 hours) answers the reservation that call made, whatever its status now, and acts no further.
    async fn reserve_property(
        &self,
        ctx: &Context<'_>,
        property_id: ID,
        buyer: Option<BuyerInput>,
        note: Option<String>,
        idempotency_key: Option<String>,
    ) -> Result<ReservationNode> {
        // Any active user may reserve, so the role is not needed: the rules
        // check the caller under the property's lock, which spares the hot
        // path a separate lookup of the user.
        let caller = caller(ctx)?;
        let request = ReserveRequest {
            property_id: parse_id("property id", &property_id)?,
            buyer: buyer.map(Into::into),
            note,
            idempotency_key,
        };
        let svc = services(ctx)?;
        let written = commit_in_time(
            ctx,
            reservations::reserve(&svc.db, &svc.policy, caller, request),
        )
        .await;
        svc.outbox.after_commit(&written.effects).await;
        if let Err(refused @ (DomainError::Unauthenticated(_) | DomainError::Forbidden(_))) =
            written.result
        {
            // Refused at the door, not a reservation attempt: not counted.
            return Err(auth::refusal(refused).into());
        }
        metrics::reservation_outcome(written.result.as_ref());
        let reserved = written.result.map_err(ApiError::from)?;
        tracing::info!(
            property.id = %reserved.reservation.property_id,
            reservation.id = %reserved.reservation.id,
            expires_at = %reserved.reservation.expires_at,
            taken_over = !written.effects.ended.is_empty(),
            replayed = reserved.replayed,
            "reserved"
        );
        Ok(ReservationNode(reserved.reservation))
    }

    /// End an active reservation early: its agent, a manager or an admin.
    async fn release_reservation(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
    ) -> Result<ReservationNode> {
        let actor = actor(ctx).await?;
        let id = parse_id("reservation id", &reservation_id)?;
        let svc = services(ctx)?;
        let written =
            commit_in_time(ctx, reservations::release(&svc.db, &svc.policy, &actor, id)).await;
        changed_by_person(svc, written, "released").await
    }

    /// Push expiresAt to one hold time from now: managers and admins only, at most the configured number of times.
    async fn extend_reservation(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
    ) -> Result<ReservationNode> {
        let actor = actor(ctx).await?;
        let id = parse_id("reservation id", &reservation_id)?;
        let svc = services(ctx)?;
        // The jobs of the earlier version will find nothing to do; those
        // scheduled after the commit release and warn at the new time.
        let written =
            commit_in_time(ctx, reservations::extend(&svc.db, &svc.policy, &actor, id)).await;
        changed_by_person(svc, written, "extended").await
    }

    /// Turn an active reservation into a sale; the property becomes SOLD: its agent, a manager or an admin.
    async fn convert_reservation(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
    ) -> Result<ReservationNode> {
        let actor = actor(ctx).await?;
        let id = parse_id("reservation id", &reservation_id)?;
        let svc = services(ctx)?;
        let written =
            commit_in_time(ctx, reservations::convert(&svc.db, &svc.policy, &actor, id)).await;
        changed_by_person(svc, written, "converted into a sale").await
    }

    /// Join the line for a property. If it is free and nobody waits, the caller gets it at once (the entry is PROMOTED, with its reservation); if it is held, the entry WAITs and becomes a hold, atomically, when the hold and every entry before it have ended.
    async fn join_queue(
        &self,
        ctx: &Context<'_>,
        property_id: ID,
        buyer: Option<BuyerInput>,
    ) -> Result<QueueEntryNode> {
        // As for reserveProperty, the rules check the caller under the lock.
        let caller = caller(ctx)?;
        let request = JoinRequest {
            property_id: parse_id("property id", &property_id)?,
            buyer: buyer.map(Into::into),
        };
        let svc = services(ctx)?;
        let written = commit_in_time(
            ctx,
            line::join_queue(&svc.db, &svc.policy, caller, &request),
        )
        .await;
        svc.outbox.after_commit(&written.effects).await;
        let entry = written.result.map_err(|e| match e {
            refused @ (DomainError::Unauthenticated(_) | DomainError::Forbidden(_)) => {
                auth::refusal(refused)
            }
            other => ApiError::from(other),
        })?;
        tracing::info!(
            property.id = %entry.property_id,
            queue_entry.id = %entry.id,
            status = entry.status.as_str(),
            "joined the line"
        );
        entry_as_it_is(ctx, entry.id).await
    }

    /// Leave the line: the entry's agent, a manager or an admin.
    async fn leave_queue(&self, ctx: &Context<'_>, entry_id: ID) -> Result<QueueEntryNode> {
        let actor = actor(ctx).await?;
        let id = parse_id("queue entry id", &entry_id)?;
        let svc = services(ctx)?;
        let written = commit_in_time(ctx, line::leave_queue(&svc.db, &actor, id)).await;
        svc.outbox.after_commit(&written.effects).await;
        let entry = written.result.map_err(ApiError::from)?;
        tracing::info!(queue_entry.id = %entry.id, "left the line");
        entry_as_it_is(ctx, entry.id).await
    }

    /// Managers and admins only.
    async fn create_project(&self, ctx: &Context<'_>, name: String) -> Result<ProjectNode> {
        let actor = actor(ctx).await?;
        let svc = services(ctx)?;
        let project = directory::create_project(&svc.db, &actor, &name)
            .await
            .map_err(ApiError::from)?;
        Ok(ProjectNode(project))
    }

    /// Add properties with these codes to a project, all or none: managers and admins only, at most 1000 at once.
    async fn add_properties(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        codes: Vec<String>,
    ) -> Result<Vec<PropertyNode>> {
        let actor = actor(ctx).await?;
        let project_id: ProjectId = parse_id("project id", &project_id)?;
        let svc = services(ctx)?;
        let added = directory::add_properties(&svc.db, &actor, project_id, &codes)
            .await
            .map_err(ApiError::from)?;
        Ok(added.into_iter().map(PropertyNode).collect())
    }

    /// Admins only.
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        name: String,
        email: String,
        role: Role,
    ) -> Result<CreatedUser> {
        let actor = actor(ctx).await?;
        let svc = services(ctx)?;
        let user = directory::create_user(&svc.db, &actor, &name, &email, role.into())
            .await
            .map_err(ApiError::from)?;
        let token = svc
            .tokens
            .mint(user.id, user.workspace_id, NEW_USER_TOKEN_TTL)
            .map_err(|e| ApiError::Internal(format!("could not sign a token: {e}")))?;
        Ok(CreatedUser {
            user: UserNode(user),
            token,
        })
    }
}

/// A person's change to a hold (release, extension, conversion): the work it
/// owes after its commit, a log line saying `what` happened, and its answer.
async fn changed_by_person(
    svc: &Services,
    written: Written<Hold>,
    what: &str,
) -> Result<ReservationNode> {
    svc.outbox.after_commit(&written.effects).await;
    let hold = written.result.map_err(ApiError::from)?;
    tracing::info!(
        reservation.id = %hold.reservation.id,
        property.id = %hold.reservation.property_id,
        "{what}"
    );
    Ok(ReservationNode(hold.reservation))
}

/// A queue entry a mutation just changed, as it reads now (with its place
/// in line).
async fn entry_as_it_is(ctx: &Context<'_>, id: QueueEntryId) -> Result<QueueEntryNode> {
    let row = loaders(ctx)?.load_one(id).await.map_err(ApiError::from)?;
    Ok(QueueEntryNode(present("queue entry", row)?))
}
