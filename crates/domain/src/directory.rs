//! Creating the things reservations are about: workspaces, users, projects
//! and their properties. Input is checked here, and stored verbatim.

use std::collections::HashSet;

use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QuerySelect,
};
use tracing::instrument;

use crate::entities::{PropertyStatus, Role, WorkspaceStatus, project, property, user, workspace};
use crate::error::{DomainError, DomainResult, on_constraint};
use crate::ids::{ProjectId, PropertyId, UserId, WorkspaceId};
use crate::input::{MAX_CODE_CHARS, MAX_NAME_CHARS, check_email, check_text};
use crate::inventory::on_code_clash;
use crate::reservations::Actor;

/// The most properties one `add_properties` call may add.
pub const MAX_PROPERTIES_PER_CALL: usize = 1000;

/// Managers and admins only.
pub(crate) fn require_manager(actor: &Actor) -> DomainResult<()> {
    if actor.role.is_manager() {
        Ok(())
    } else {
        Err(DomainError::Forbidden(
            "only managers and admins may do this",
        ))
    }
}

/// The workspaces named `name` (without regard to case) whose users include
/// an ADMIN with `admin_email`, with that admin: what a second `bootstrap`
/// with the same name and email would duplicate.
pub async fn workspaces_of_admin(
    db: &impl ConnectionTrait,
    name: &str,
    admin_email: &str,
) -> DomainResult<Vec<(workspace::Model, user::Model)>> {
    let lower = |col: Expr| Expr::expr(Func::lower(col));
    let admins = user::Entity::find()
        .filter(user::Column::Role.eq(Role::Admin))
        .filter(
            lower(Expr::col((user::Entity, user::Column::Email))).eq(admin_email.to_lowercase()),
        )
        .all(db)
        .await?;
    let workspaces = workspace::Entity::find()
        .filter(workspace::Column::Id.is_in(admins.iter().map(|a| a.workspace_id)))
        .filter(
            lower(Expr::col((workspace::Entity, workspace::Column::Name))).eq(name.to_lowercase()),
        )
        .all(db)
        .await?;
    Ok(workspaces
        .into_iter()
        .filter_map(|ws| {
            let admin = admins.iter().find(|a| a.workspace_id == ws.id)?.clone();
            Some((ws, admin))
        })
        .collect())
}

/// Creates a workspace and its first ADMIN, together or not at all.
#[instrument(skip_all)]
pub async fn create_workspace(
    db: &DatabaseConnection,
    name: &str,
    admin_email: &str,
    admin_name: &str,
) -> DomainResult<(workspace::Model, user::Model)> {
    check_text("workspace name", name, MAX_NAME_CHARS)?;
    check_email(admin_email)?;
    check_text("admin name", admin_name, MAX_NAME_CHARS)?;
    let txn = crate::db::begin(db).await?;
    let ws = workspace::Entity::insert(workspace::ActiveModel {
        id: Set(WorkspaceId::new()),
        name: Set(name.to_owned()),
        status: Set(WorkspaceStatus::Active),
        ..Default::default()
    })
    .exec_with_returning(&txn)
    .await?;
    let admin = insert_user(&txn, ws.id, admin_name, admin_email, Role::Admin).await?;
    txn.commit().await?;
    Ok((ws, admin))
}

async fn insert_user(
    conn: &impl ConnectionTrait,
    ws: WorkspaceId,
    name: &str,
    email: &str,
    role: Role,
) -> DomainResult<user::Model> {
    user::Entity::insert(user::ActiveModel {
        id: Set(UserId::new()),
        workspace_id: Set(ws),
        email: Set(email.to_owned()),
        name: Set(name.to_owned()),
        role: Set(role),
        active: Set(true),
        ..Default::default()
    })
    .exec_with_returning(conn)
    .await
    .map_err(|e| {
        on_constraint(e, "app_user_email_per_workspace", || {
            DomainError::InvalidInput(format!(
                "a user with the email {email:?} already exists in this workspace"
            ))
        })
    })
}

/// Adds a user to the actor's workspace: admins only.
#[instrument(skip_all, fields(workspace.id = %actor.workspace_id, user.id = %actor.user_id))]
pub async fn create_user(
    db: &impl ConnectionTrait,
    actor: &Actor,
    name: &str,
    email: &str,
    role: Role,
) -> DomainResult<user::Model> {
    if actor.role != Role::Admin {
        return Err(DomainError::Forbidden("only admins may create users"));
    }
    check_text("name", name, MAX_NAME_CHARS)?;
    check_email(email)?;
    insert_user(db, actor.workspace_id, name, email, role).await
}

/// Suspends or reactivates a workspace (operators, from the command line).
pub async fn set_workspace_status(
    db: &impl ConnectionTrait,
    ws: WorkspaceId,
    status: WorkspaceStatus,
) -> DomainResult<()> {
    let result = workspace::Entity::update_many()
        .col_expr(
            workspace::Column::Status,
            sea_orm::sea_query::Expr::value(status.as_str()),
        )
        .filter(workspace::Column::Id.eq(ws))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Err(DomainError::NotFound("workspace"));
    }
    Ok(())
}

/// Creates a project in the actor's workspace: managers and admins.
#[instrument(skip_all, fields(workspace.id = %actor.workspace_id, user.id = %actor.user_id))]
pub async fn create_project(
    db: &impl ConnectionTrait,
    actor: &Actor,
    name: &str,
) -> DomainResult<project::Model> {
    require_manager(actor)?;
    check_text("project name", name, MAX_NAME_CHARS)?;
    Ok(project::Entity::insert(project::ActiveModel {
        id: Set(ProjectId::new()),
        workspace_id: Set(actor.workspace_id),
        name: Set(name.to_owned()),
        ..Default::default()
    })
    .exec_with_returning(db)
    .await?)
}

/// Adds properties with these codes to a project, all or none: managers and
/// admins, at most `MAX_PROPERTIES_PER_CALL` at once. Codes are unique per
/// project compared without regard to case. Returned in the order given.
#[instrument(skip_all, fields(workspace.id = %actor.workspace_id, project.id = %project_id, count = codes.len()))]
pub async fn add_properties(
    db: &DatabaseConnection,
    actor: &Actor,
    project_id: ProjectId,
    codes: &[String],
) -> DomainResult<Vec<property::Model>> {
    require_manager(actor)?;
    if codes.is_empty() {
        return Err(DomainError::InvalidInput("give at least one code".into()));
    }
    if codes.len() > MAX_PROPERTIES_PER_CALL {
        return Err(DomainError::InvalidInput(format!(
            "{} codes given, the most allowed at once is {MAX_PROPERTIES_PER_CALL}",
            codes.len()
        )));
    }
    let mut seen = HashSet::with_capacity(codes.len());
    let mut repeated = Vec::new();
    for code in codes {
        check_text("a code", code, MAX_CODE_CHARS)?;
        if !seen.insert(code.to_lowercase()) {
            repeated.push(code.as_str());
        }
    }
    if !repeated.is_empty() {
        return Err(DomainError::InvalidInput(format!(
            "codes given more than once (without regard to case): {}",
            quoted(&repeated)
        )));
    }

    let txn = crate::db::begin(db).await?;
    let project_exists = project::Entity::find_by_id(project_id)
        .filter(project::Column::WorkspaceId.eq(actor.workspace_id))
        .lock_shared()
        .one(&txn)
        .await?
        .is_some();
    if !project_exists {
        return Err(DomainError::NotFound("project"));
    }
    let existing: Vec<String> = property::Entity::find()
        .select_only()
        .column(property::Column::Code)
        .filter(property::Column::ProjectId.eq(project_id))
        .filter(Expr::expr(Func::lower(Expr::col(property::Column::Code))).is_in(seen))
        .into_tuple()
        .all(&txn)
        .await?;
    if !existing.is_empty() {
        let existing: Vec<&str> = existing.iter().map(String::as_str).collect();
        return Err(DomainError::InvalidInput(format!(
            "codes already in this project (without regard to case): {}",
            quoted(&existing)
        )));
    }
    let rows = codes.iter().map(|code| property::ActiveModel {
        id: Set(PropertyId::new()),
        workspace_id: Set(actor.workspace_id),
        project_id: Set(project_id),
        code: Set(code.clone()),
        status: Set(PropertyStatus::Available),
        reserved_by_id: Set(None),
        reserved_until: Set(None),
        ..Default::default()
    });
    let mut added = property::Entity::insert_many(rows)
        .exec_with_returning(&txn)
        .await
        .map_err(|e| {
            // A concurrent call added one of these codes first.
            on_code_clash(e, || {
                DomainError::InvalidInput("a code was added to this project meanwhile".into())
            })
        })?;
    txn.commit().await?;
    let order: std::collections::HashMap<&str, usize> = codes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    added.sort_by_key(|p| order.get(p.code.as_str()).copied());
    Ok(added)
}

fn quoted(items: &[&str]) -> String {
    const SHOWN: usize = 20;
    let mut out: Vec<String> = items.iter().take(SHOWN).map(|c| format!("{c:?}")).collect();
    if items.len() > SHOWN {
        out.push(format!("and {} more", items.len() - SHOWN));
    }
    out.join(", ")
}
