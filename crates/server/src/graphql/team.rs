//! The mutations that run a team: admins change users (name, role, active),
//! managers and admins change projects (name, currency, archived). Roles and
//! rules are the domain's (`holdfast_domain::team`); each write commits
//! within the request's deadline (`deadline.rs`).

use std::future::Future;

use async_graphql::{Context, ID, MaybeUndefined, Object, Result};
use holdfast_domain::team::{self, ProjectChange, UserChange};
use holdfast_domain::{DomainResult, ProjectId, UserId};

use super::context::{actor, parse_id, services};
use super::types::{ProjectNode, Role, UserNode};
use crate::deadline::commit_in_time;
use crate::error::ApiError;

#[derive(Default)]
pub struct TeamMutation;

#[Object]
impl TeamMutation {
    /// Admins only. A deactivated user's tokens stop working at once; their holds and entries stay until they end. The last active admin of a workspace can be neither demoted nor deactivated.
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        name: Option<String>,
        role: Option<Role>,
        active: Option<bool>,
    ) -> Result<UserNode> {
        let actor = actor(ctx).await?;
        let user_id: UserId = parse_id("user id", &user_id)?;
        let change = UserChange {
            name,
            role: role.map(Into::into),
            active,
        };
        let svc = services(ctx)?;
        let user = commit(ctx, team::update_user(&svc.db, &actor, user_id, &change)).await?;
        tracing::info!(
            target.id = %user.id,
            role = ?user.role,
            active = user.active,
            "user updated"
        );
        Ok(UserNode(user))
    }

    /// Managers and admins only. currency is an ISO 4217 code (three upper-case letters); null removes it, and leaving the argument out keeps it (a declared variable that is not sent counts as null). An archived project is left out of projects() and its properties cannot be reserved.
    async fn update_project(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        name: Option<String>,
        currency: MaybeUndefined<String>,
        archived: Option<bool>,
    ) -> Result<ProjectNode> {
        let actor = actor(ctx).await?;
        let project_id: ProjectId = parse_id("project id", &project_id)?;
        let change = ProjectChange {
            name,
            currency: currency.into(),
            archived,
        };
        let svc = services(ctx)?;
        let project = commit(
            ctx,
            team::update_project(&svc.db, &actor, project_id, &change),
        )
        .await?;
        tracing::info!(
            project.id = %project.id,
            archived = project.archived,
            "project updated"
        );
        Ok(ProjectNode(project))
    }
}

/// A team change, committed within the request's deadline (it owes nothing
/// after its commit: no hold or place in line changes).
async fn commit<T>(ctx: &Context<'_>, work: impl Future<Output = DomainResult<T>>) -> Result<T> {
    let written = commit_in_time(ctx, async { work.await.into() }).await;
    Ok(written.result.map_err(ApiError::from)?)
}
