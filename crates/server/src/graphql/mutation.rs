//! The schema's mutations. Roles and ownership are the domain's to enforce;
//! this layer authenticates, parses ids, commits within the request's
//! deadline (`deadline.rs`), schedules release jobs after the commit and
//! counts outcomes.

use std::time::Duration;

use async_graphql::{Context, ID, Object, Result};
use holdfast_domain::{DomainError, ProjectId, PropertyId, ReservationId, directory, reservations};

use super::context::{actor, caller, parse_id, services};
use super::types::{CreatedUser, ProjectNode, PropertyNode, ReservationNode, Role, UserNode};
use crate::deadline::commit_in_time;
use crate::error::ApiError;
use crate::{auth, jobs, metrics};

/// How long the token handed out with a new user lasts.
pub const NEW_USER_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

pub struct Mutation;

#[Object]
impl Mutation {
    /// Reserve an available property for the caller for the configured hold time (24 hours by default).
    async fn reserve_property(
        &self,
        ctx: &Context<'_>,
        property_id: ID,
    ) -> Result<ReservationNode> {
        // Any active user may reserve, so the role is not needed: the rules
        // check the caller under the property's lock, which spares the hot
        // path a separate lookup of the user.
        let caller = caller(ctx)?;
        let property_id: PropertyId = parse_id("property id", &property_id)?;
        let svc = services(ctx)?;
        let written = commit_in_time(
            ctx,
            reservations::reserve(&svc.db, &svc.policy, caller, property_id),
        )
        .await;
        jobs::after_commit(&svc.queue, &svc.events, &written.effects).await;
        if let Err(refused @ (DomainError::Unauthenticated(_) | DomainError::Forbidden(_))) =
            written.result
        {
            // Refused at the door, not a reservation attempt: not counted.
            return Err(auth::refusal(refused).into());
        }
        metrics::reservation_outcome(written.result.as_ref().map(|_| ()));
        let hold = written.result.map_err(ApiError::from)?;
        tracing::info!(
            property.id = %property_id,
            reservation.id = %hold.reservation.id,
            expires_at = %hold.reservation.expires_at,
            taken_over = !written.effects.ended.is_empty(),
            "reserved"
        );
        Ok(ReservationNode(hold.reservation))
    }

    /// End an active reservation early: its agent, a manager or an admin.
    async fn release_reservation(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
    ) -> Result<ReservationNode> {
        let actor = actor(ctx).await?;
        let id: ReservationId = parse_id("reservation id", &reservation_id)?;
        let svc = services(ctx)?;
        let written = commit_in_time(ctx, reservations::release(&svc.db, &actor, id)).await;
        jobs::after_commit(&svc.queue, &svc.events, &written.effects).await;
        let hold = written.result.map_err(ApiError::from)?;
        tracing::info!(
            reservation.id = %id,
            property.id = %hold.reservation.property_id,
            "released"
        );
        Ok(ReservationNode(hold.reservation))
    }

    /// Push expiresAt to one hold time from now: managers and admins only, at most the configured number of times.
    async fn extend_reservation(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
    ) -> Result<ReservationNode> {
        let actor = actor(ctx).await?;
        let id: ReservationId = parse_id("reservation id", &reservation_id)?;
        let svc = services(ctx)?;
        // The job of the earlier version will find nothing to do; the one
        // scheduled after the commit releases the hold at its new time.
        let written =
            commit_in_time(ctx, reservations::extend(&svc.db, &svc.policy, &actor, id)).await;
        jobs::after_commit(&svc.queue, &svc.events, &written.effects).await;
        let hold = written.result.map_err(ApiError::from)?;
        Ok(ReservationNode(hold.reservation))
    }

    /// Turn an active reservation into a sale; the property becomes SOLD: its agent, a manager or an admin.
    async fn convert_reservation(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
    ) -> Result<ReservationNode> {
        let actor = actor(ctx).await?;
        let id: ReservationId = parse_id("reservation id", &reservation_id)?;
        let svc = services(ctx)?;
        let written = commit_in_time(ctx, reservations::convert(&svc.db, &actor, id)).await;
        jobs::after_commit(&svc.queue, &svc.events, &written.effects).await;
        let hold = written.result.map_err(ApiError::from)?;
        tracing::info!(
            reservation.id = %id,
            property.id = %hold.reservation.property_id,
            "converted into a sale"
        );
        Ok(ReservationNode(hold.reservation))
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
