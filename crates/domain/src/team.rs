//! Running a team without SQL: admins change their users (name, role,
//! active), managers and admins change their projects (name, currency,
//! archived), and operators suspend workspaces and (de)activate users from
//! the command line.
//!
//! Every change to who may run a workspace is decided under the workspace's
//! row lock, one at a time: that is what keeps "a workspace never loses its
//! last active admin over the API" true when two admins demote each other at
//! the same instant. The lock is `FOR NO KEY UPDATE`, so it never waits for
//! (nor blocks) the rows that merely point at the workspace.

use sea_orm::sea_query::{Expr, LockType};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QuerySelect,
};
use tracing::instrument;

use crate::directory::{self, require_manager};
use crate::entities::{Role, WorkspaceStatus, project, user, workspace};
use crate::error::{DomainError, DomainResult, on_constraint};
use crate::ids::{ProjectId, UserId, WorkspaceId};
use crate::input::{MAX_NAME_CHARS, check_currency, check_text};
use crate::reads;
use crate::reservations::Actor;
use crate::rules::caller_standing;

/// What `update_user` changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub name: Option<String>,
    pub role: Option<Role>,
    pub active: Option<bool>,
}

/// What `update_project` changes; `None` leaves a field as it is, and
/// `currency: Some(None)` removes the project's currency.
#[derive(Debug, Clone, Default)]
pub struct ProjectChange {
    pub name: Option<String>,
    pub currency: Option<Option<String>>,
    pub archived: Option<bool>,
}

/// A workspace an operator suspended or resumed, and its status before.
#[derive(Debug, Clone)]
pub struct WorkspaceSwitch {
    pub workspace: workspace::Model,
    pub was: WorkspaceStatus,
}

/// A user an operator deactivated or activated, and what they were before.
#[derive(Debug, Clone)]
pub struct UserSwitch {
    pub user: user::Model,
    pub workspace: workspace::Model,
    pub was_active: bool,
    /// The user was the workspace's last active admin and is no longer
    /// active: nobody can manage its users over the API until an admin is
    /// activated again.
    pub was_last_active_admin: bool,
}

/// Changes a user of the actor's workspace: admins only. The last active
/// admin of a workspace can be neither demoted nor deactivated (decided
/// under the workspace's lock). A deactivated user is refused from their
/// next request on; their holds and places in line stay until they end.
#[instrument(skip_all, fields(workspace.id = %actor.workspace_id, user.id = %actor.user_id, target.id = %user_id))]
pub async fn update_user(
    db: &DatabaseConnection,
    actor: &Actor,
    user_id: UserId,
    change: &UserChange,
) -> DomainResult<user::Model> {
    require_admin(actor.role)?;
    if let Some(name) = &change.name {
        check_text("name", name, MAX_NAME_CHARS)?;
    }
    let txn = crate::db::begin(db).await?;
    let ws = lock_workspace(&txn, actor.workspace_id).await?;
    // The caller again, under the lock: another admin may have demoted or
    // deactivated them since their request was let in.
    let caller = reads::user(&txn, ws.id, actor.user_id).await?;
    caller_standing(caller.as_ref().map(|u| (u.active, ws.status)))?;
    if let Some(caller) = &caller {
        require_admin(caller.role)?;
    }
    let target = reads::user(&txn, ws.id, user_id)
        .await?
        .ok_or(DomainError::NotFound("user"))?;
    if takes_the_last_admin(&txn, &target, change).await? {
        return Err(DomainError::InvalidInput(format!(
            "{:?} is the last active admin of this workspace: make another user an admin \
             before demoting or deactivating them",
            target.name
        )));
    }
    let user = apply(&txn, target, change).await?;
    txn.commit().await?;
    Ok(user)
}

/// Changes a project of the actor's workspace: managers and admins.
#[instrument(skip_all, fields(workspace.id = %actor.workspace_id, user.id = %actor.user_id, project.id = %project_id))]
pub async fn update_project(
    db: &impl ConnectionTrait,
    actor: &Actor,
    project_id: ProjectId,
    change: &ProjectChange,
) -> DomainResult<project::Model> {
    require_manager(actor)?;
    if let Some(name) = &change.name {
        check_text("project name", name, MAX_NAME_CHARS)?;
    }
    if let Some(Some(code)) = &change.currency {
        check_currency(code)?;
    }
    let mut update = project::Entity::update_many()
        .filter(project::Column::Id.eq(project_id))
        .filter(project::Column::WorkspaceId.eq(actor.workspace_id));
    let mut changed = false;
    if let Some(name) = &change.name {
        update = update.col_expr(project::Column::Name, Expr::value(name.clone()));
        changed = true;
    }
    if let Some(currency) = &change.currency {
        update = update.col_expr(project::Column::Currency, Expr::value(currency.clone()));
        changed = true;
    }
    if let Some(archived) = change.archived {
        update = update.col_expr(project::Column::Archived, Expr::value(archived));
        changed = true;
    }
    let row = if changed {
        update
            .exec_with_returning(db)
            .await
            .map_err(|e| {
                on_constraint(e, "project_currency_iso_4217", || {
                    DomainError::InvalidInput("the currency is not an ISO 4217 code".into())
                })
            })?
            .into_iter()
            .next()
    } else {
        project::Entity::find_by_id(project_id)
            .filter(project::Column::WorkspaceId.eq(actor.workspace_id))
            .one(db)
            .await?
    };
    row.ok_or(DomainError::NotFound("project"))
}

/// Suspends or resumes a workspace (operators, from the command line); doing
/// it twice changes nothing the second time.
#[instrument(skip_all, fields(workspace.id = %id, status = status.as_str()))]
pub async fn switch_workspace(
    db: &DatabaseConnection,
    id: WorkspaceId,
    status: WorkspaceStatus,
) -> DomainResult<WorkspaceSwitch> {
    let txn = crate::db::begin(db).await?;
    let before = lock_workspace(&txn, id).await?;
    if before.status != status {
        directory::set_workspace_status(&txn, id, status).await?;
    }
    txn.commit().await?;
    Ok(WorkspaceSwitch {
        was: before.status,
        workspace: workspace::Model { status, ..before },
    })
}

/// Deactivates or activates a user (operators, from the command line).
/// Operators are above the last-admin rule: the switch tells whether it
/// took the workspace's last active admin away. Doing it twice changes
/// nothing the second time.
#[instrument(skip_all, fields(target.id = %id, active))]
pub async fn switch_user(
    db: &DatabaseConnection,
    id: UserId,
    active: bool,
) -> DomainResult<UserSwitch> {
    let txn = crate::db::begin(db).await?;
    let workspace_id = user::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(DomainError::NotFound("user"))?
        .workspace_id;
    let workspace = lock_workspace(&txn, workspace_id).await?;
    // Read again under the lock: the row the decision is about.
    let target = reads::user(&txn, workspace_id, id)
        .await?
        .ok_or(DomainError::NotFound("user"))?;
    let change = UserChange {
        active: Some(active),
        ..UserChange::default()
    };
    let was_last_active_admin = takes_the_last_admin(&txn, &target, &change).await?;
    let was_active = target.active;
    let user = apply(&txn, target, &change).await?;
    txn.commit().await?;
    Ok(UserSwitch {
        user,
        workspace,
        was_active,
        was_last_active_admin,
    })
}

fn require_admin(role: Role) -> DomainResult<()> {
    if role == Role::Admin {
        Ok(())
    } else {
        Err(DomainError::Forbidden("only admins may change users"))
    }
}

/// Locks the workspace's row for the rest of the transaction: changes to who
/// may run it are decided one at a time.
async fn lock_workspace(
    txn: &DatabaseTransaction,
    id: WorkspaceId,
) -> DomainResult<workspace::Model> {
    workspace::Entity::find_by_id(id)
        .lock(LockType::NoKeyUpdate)
        .one(txn)
        .await?
        .ok_or(DomainError::NotFound("workspace"))
}

/// Whether `change` leaves the target's workspace without an active admin:
/// the target is one, would no longer be, and no other is. Called under the
/// workspace's lock, so the count cannot change before the commit.
async fn takes_the_last_admin(
    txn: &DatabaseTransaction,
    target: &user::Model,
    change: &UserChange,
) -> DomainResult<bool> {
    let is_admin = |active: bool, role: Role| active && role == Role::Admin;
    let now = is_admin(target.active, target.role);
    let after = is_admin(
        change.active.unwrap_or(target.active),
        change.role.unwrap_or(target.role),
    );
    if !now || after {
        return Ok(false);
    }
    let others = user::Entity::find()
        .filter(user::Column::WorkspaceId.eq(target.workspace_id))
        .filter(user::Column::Role.eq(Role::Admin))
        .filter(user::Column::Active.eq(true))
        .filter(user::Column::Id.ne(target.id))
        .count(txn)
        .await?;
    Ok(others == 0)
}

async fn apply(
    txn: &DatabaseTransaction,
    target: user::Model,
    change: &UserChange,
) -> DomainResult<user::Model> {
    let mut row = target.clone().into_active_model();
    if let Some(name) = &change.name {
        row.name = Set(name.clone());
    }
    if let Some(role) = change.role {
        row.role = Set(role);
    }
    if let Some(active) = change.active {
        row.active = Set(active);
    }
    if !row.is_changed() {
        return Ok(target);
    }
    Ok(row.update(txn).await?)
}
