//! Reads, always as of the database's now: they select from the views
//! `rules.property_now` and `rules.reservation_now` (the hold rules, in
//! `migrations/src/rules.sql`) under the tables' names, so a lapsed hold reads
//! AVAILABLE / EXPIRED whether or not the release job or the sweep has run
//! yet. Every read is filtered by workspace.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Alias;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, Order,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select, Statement,
};

use crate::entities::{
    PropertyStatus, QueueEntryStatus, ReservationStatus, project, property, queue_entry,
    reservation, user, workspace,
};
use crate::error::DomainResult;
use crate::ids::{ProjectId, PropertyId, QueueEntryId, ReservationId, UserId, WorkspaceId};

/// Pages are at most this long, whatever the caller asks.
pub const MAX_PAGE: u64 = 100;

/// `SELECT ... FROM rules.<view> AS <table>`: the entity's own query, so its
/// column names and filters apply, reading the as-of-now view of the rules
/// instead of the table.
fn from_view<E: EntityTrait>(view: &str, table: &str) -> Select<E> {
    let mut select = E::find();
    QueryTrait::query(&mut select)
        .from_clear()
        .from_as((Alias::new("rules"), Alias::new(view)), Alias::new(table));
    select
}

/// Properties as of now.
pub fn properties_now() -> Select<property::Entity> {
    from_view("property_now", "property")
}

/// Reservations as of now.
pub fn reservations_now() -> Select<reservation::Entity> {
    from_view("reservation_now", "reservation")
}

pub async fn workspace(
    db: &impl ConnectionTrait,
    id: WorkspaceId,
) -> DomainResult<Option<workspace::Model>> {
    Ok(workspace::Entity::find_by_id(id).one(db).await?)
}

pub async fn user(
    db: &impl ConnectionTrait,
    ws: WorkspaceId,
    id: UserId,
) -> DomainResult<Option<user::Model>> {
    Ok(user::Entity::find_by_id(id)
        .filter(user::Column::WorkspaceId.eq(ws))
        .one(db)
        .await?)
}

pub async fn users_by_ids(
    db: &impl ConnectionTrait,
    ws: WorkspaceId,
    ids: impl IntoIterator<Item = UserId>,
) -> DomainResult<Vec<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::WorkspaceId.eq(ws))
        .filter(user::Column::Id.is_in(ids))
        .all(db)
        .await?)
}

/// Every user of the workspace, by name.
pub async fn users(db: &impl ConnectionTrait, ws: WorkspaceId) -> DomainResult<Vec<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::WorkspaceId.eq(ws))
        .order_by_asc(user::Column::Name)
        .order_by_asc(user::Column::Id)
        .all(db)
        .await?)
}

pub async fn projects_by_ids(
    db: &impl ConnectionTrait,
    ws: WorkspaceId,
    ids: impl IntoIterator<Item = ProjectId>,
) -> DomainResult<Vec<project::Model>> {
    Ok(project::Entity::find()
        .filter(project::Column::WorkspaceId.eq(ws))
        .filter(project::Column::Id.is_in(ids))
        .all(db)
        .await?)
}

/// Projects in creation order (ids are time-ordered), after the cursor
/// `after`; archived ones only when `include_archived`.
pub async fn projects_page(
    db: &impl ConnectionTrait,
    ws: WorkspaceId,
    include_archived: bool,
    after: Option<ProjectId>,
    limit: u64,
) -> DomainResult<Vec<project::Model>> {
    let mut q = project::Entity::find().filter(project::Column::WorkspaceId.eq(ws));
    if !include_archived {
        q = q.filter(project::Column::Archived.eq(false));
    }
    if let Some(after) = after {
        q = q.filter(project::Column::Id.gt(after));
    }
    Ok(q.order_by_asc(project::Column::Id)
        .limit(limit.min(MAX_PAGE + 1))
        .all(db)
        .await?)
}

pub async fn properties_by_ids(
    db: &impl ConnectionTrait,
    ws: WorkspaceId,
    ids: impl IntoIterator<Item = PropertyId>,
) -> DomainResult<Vec<property::Model>> {
    Ok(properties_now()
        .filter(property::Column::WorkspaceId.eq(ws))
        .filter(property::Column::Id.is_in(ids))
        .all(db)
        .await?)
}

/// Which properties a page lists.
#[derive(Debug, Clone, Default)]
pub struct PropertyFilter {
    pub project_id: Option<ProjectId>,
    pub status: Option<PropertyStatus>,
}

/// Properties in code order (then id), after the cursor `(code, id)`.
pub async fn properties_page(
    db: &impl ConnectionTrait,
    ws: WorkspaceId,
    filter: &PropertyFilter,
    after: Option<(String, PropertyId)>,
    limit: u64,
) -> DomainResult<Vec<property::Model>> {
    let mut q = properties_now().filter(property::Column::WorkspaceId.eq(ws));
    if let Some(project) = filter.project_id {
        q = q.filter(property::Column::ProjectId.eq(project));
    }
    if let Some(status) = filter.status {
        q = q.filter(property::Column::Status.eq(status));
    }
    if let Some((code, id)) = after {
        q = q.filter(
            Condition::any()
                .add(property::Column::Code.gt(code.clone()))
                .add(
                    Condition::all()
                        .add(property::Column::Code.eq(code))
                        .add(property::Column::Id.gt(id)),
                ),
        );
    }
    Ok(q.order_by(property::Column::Code, Order::Asc)
        .order_by(property::Column::Id, Order::Asc)
        .limit(limit.min(MAX_PAGE + 1))
        .all(db)
        .await?)
}

pub async fn reservations_by_ids(
    db: &impl ConnectionTrait,
    ws: WorkspaceId,
    ids: impl IntoIterator<Item = ReservationId>,
) -> DomainResult<Vec<reservation::Model>> {
    Ok(reservations_now()
        .filter(reservation::Column::WorkspaceId.eq(ws))
        .filter(reservation::Column::Id.is_in(ids))
        .all(db)
        .await?)
}

/// Which reservations a page lists.
#[derive(Debug, Clone, Default)]
pub struct ReservationFilter {
    pub property_id: Option<PropertyId>,
    pub agent_id: Option<UserId>,
    pub status: Option<ReservationStatus>,
}

/// Reservations newest first, after (that is, older than) the cursor
/// `(created_at, id)`.
pub async fn reservations_page(
    db: &impl ConnectionTrait,
    ws: WorkspaceId,
    filter: &ReservationFilter,
    after: Option<(DateTime<Utc>, ReservationId)>,
    limit: u64,
) -> DomainResult<Vec<reservation::Model>> {
    let mut q = reservations_now().filter(reservation::Column::WorkspaceId.eq(ws));
    if let Some(p) = filter.property_id {
        q = q.filter(reservation::Column::PropertyId.eq(p));
    }
    if let Some(a) = filter.agent_id {
        q = q.filter(reservation::Column::AgentId.eq(a));
    }
    if let Some(s) = filter.status {
        q = q.filter(reservation::Column::Status.eq(s));
    }
    if let Some((created_at, id)) = after {
        q = q.filter(
            Condition::any()
                .add(reservation::Column::CreatedAt.lt(created_at))
                .add(
                    Condition::all()
                        .add(reservation::Column::CreatedAt.eq(created_at))
                        .add(reservation::Column::Id.lt(id)),
                ),
        );
    }
    Ok(q.order_by(reservation::Column::CreatedAt, Order::Desc)
        .order_by(reservation::Column::Id, Order::Desc)
        .limit(limit.min(MAX_PAGE + 1))
        .all(db)
        .await?)
}

/// The reservations that hold a property right now, of these agents.
pub async fn active_reservations_of_agents(
    db: &impl ConnectionTrait,
    ws: WorkspaceId,
    agents: impl IntoIterator<Item = UserId>,
) -> DomainResult<Vec<reservation::Model>> {
    Ok(reservations_now()
        .filter(reservation::Column::WorkspaceId.eq(ws))
        .filter(reservation::Column::AgentId.is_in(agents))
        .filter(reservation::Column::Status.eq(ReservationStatus::Active))
        .order_by(reservation::Column::CreatedAt, Order::Desc)
        .all(db)
        .await?)
}

/// The reservation that holds each of these properties right now, if any.
pub async fn active_reservations_of_properties(
    db: &impl ConnectionTrait,
    ws: WorkspaceId,
    properties: impl IntoIterator<Item = PropertyId>,
) -> DomainResult<Vec<reservation::Model>> {
    Ok(reservations_now()
        .filter(reservation::Column::WorkspaceId.eq(ws))
        .filter(reservation::Column::PropertyId.is_in(properties))
        .filter(reservation::Column::Status.eq(ReservationStatus::Active))
        .all(db)
        .await?)
}

/// A project's plots by their status as of now. They come from the project's
/// tally, written as each transaction that changes its plots commits, in 64
/// shards (by plot, so that concurrent reserves of a project do not queue on
/// one row); a hold that has lapsed counts as AVAILABLE, as
/// `rules.property_now` reads it. No read counts the plots one by one. A
/// withdrawn plot counts in `total` only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromQueryResult)]
pub struct PlotCounts {
    pub total: i64,
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
    pub withdrawn: i64,
}

pub async fn plot_counts(
    db: &impl ConnectionTrait,
    ws: WorkspaceId,
    projects: &[ProjectId],
) -> DomainResult<HashMap<ProjectId, PlotCounts>> {
    #[derive(FromQueryResult)]
    struct Row {
        project_id: ProjectId,
        total: i64,
        available: i64,
        reserved: i64,
        sold: i64,
        withdrawn: i64,
    }
    if projects.is_empty() {
        return Ok(HashMap::new());
    }
    // Counted as `rules.property_now` reads each plot (see rules.plot_counts).
    let ids: Vec<uuid::Uuid> = projects.iter().map(|p| p.0).collect();
    let rows = Row::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT * FROM rules.plot_counts($1, $2)",
        [ws.0.into(), ids.into()],
    ))
    .all(db)
    .await?;
    let mut out: HashMap<ProjectId, PlotCounts> = projects
        .iter()
        .map(|p| (*p, PlotCounts::default()))
        .collect();
    for r in rows {
        out.insert(
            r.project_id,
            PlotCounts {
                total: r.total,
                available: r.available,
                reserved: r.reserved,
                sold: r.sold,
                withdrawn: r.withdrawn,
            },
        );
    }
    Ok(out)
}

/// The database's clock: the one "now" of holdfast.
pub async fn db_now(db: &impl ConnectionTrait) -> DomainResult<DateTime<Utc>> {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT rules.now() AS now",
        ))
        .await?
        .ok_or_else(|| sea_orm::DbErr::Custom("no row from rules.now()".into()))?;
    Ok(row.try_get("", "now")?)
}

/// A queue entry as of now, with its place in line (1 for the next; `None`
/// once it no longer waits).
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct QueueEntryNow {
    #[sea_orm(nested)]
    pub entry: queue_entry::Model,
    pub position: Option<i64>,
}

fn queue_entries_now() -> Select<queue_entry::Entity> {
    from_view("queue_entry_now", "queue_entry")
}

fn with_position(
    q: Select<queue_entry::Entity>,
) -> sea_orm::Selector<sea_orm::SelectModel<QueueEntryNow>> {
    q.column_as(
        sea_orm::sea_query::Expr::cust("queue_entry.position"),
        "position",
    )
    .into_model::<QueueEntryNow>()
}

pub async fn queue_entries_by_ids(
    db: &impl ConnectionTrait,
    ws: WorkspaceId,
    ids: impl IntoIterator<Item = QueueEntryId>,
) -> DomainResult<Vec<QueueEntryNow>> {
    let q = queue_entries_now()
        .filter(queue_entry::Column::WorkspaceId.eq(ws))
        .filter(queue_entry::Column::Id.is_in(ids));
    Ok(with_position(q).all(db).await?)
}

/// Which queue entries a page lists.
#[derive(Debug, Clone, Default)]
pub struct QueueEntryFilter {
    pub property_id: Option<PropertyId>,
    pub agent_id: Option<UserId>,
    pub status: Option<QueueEntryStatus>,
}

/// Queue entries newest first, after (that is, older than) the cursor
/// `(created_at, id)`.
pub async fn queue_entries_page(
    db: &impl ConnectionTrait,
    ws: WorkspaceId,
    filter: &QueueEntryFilter,
    after: Option<(DateTime<Utc>, QueueEntryId)>,
    limit: u64,
) -> DomainResult<Vec<QueueEntryNow>> {
    let mut q = queue_entries_now().filter(queue_entry::Column::WorkspaceId.eq(ws));
    if let Some(p) = filter.property_id {
        q = q.filter(queue_entry::Column::PropertyId.eq(p));
    }
    if let Some(a) = filter.agent_id {
        q = q.filter(queue_entry::Column::AgentId.eq(a));
    }
    if let Some(s) = filter.status {
        q = q.filter(queue_entry::Column::Status.eq(s));
    }
    if let Some((created_at, id)) = after {
        q = q.filter(
            Condition::any()
                .add(queue_entry::Column::CreatedAt.lt(created_at))
                .add(
                    Condition::all()
                        .add(queue_entry::Column::CreatedAt.eq(created_at))
                        .add(queue_entry::Column::Id.lt(id)),
                ),
        );
    }
    let q = q
        .order_by(queue_entry::Column::CreatedAt, Order::Desc)
        .order_by(queue_entry::Column::Id, Order::Desc)
        .limit(limit.min(MAX_PAGE + 1));
    Ok(with_position(q).all(db).await?)
}

/// The entries waiting for a property, first in line first, after the
/// cursor `(created_at, id)`.
pub async fn line_page(
    db: &impl ConnectionTrait,
    ws: WorkspaceId,
    property: PropertyId,
    after: Option<(DateTime<Utc>, QueueEntryId)>,
    limit: u64,
) -> DomainResult<Vec<QueueEntryNow>> {
    let mut q = queue_entries_now()
        .filter(queue_entry::Column::WorkspaceId.eq(ws))
        .filter(queue_entry::Column::PropertyId.eq(property))
        .filter(queue_entry::Column::Status.eq(QueueEntryStatus::Waiting));
    if let Some((created_at, id)) = after {
        q = q.filter(
            Condition::any()
                .add(queue_entry::Column::CreatedAt.gt(created_at))
                .add(
                    Condition::all()
                        .add(queue_entry::Column::CreatedAt.eq(created_at))
                        .add(queue_entry::Column::Id.gt(id)),
                ),
        );
    }
    let q = q
        .order_by(queue_entry::Column::CreatedAt, Order::Asc)
        .order_by(queue_entry::Column::Id, Order::Asc)
        .limit(limit.min(MAX_PAGE + 1));
    Ok(with_position(q).all(db).await?)
}

/// How many entries wait for each of these properties.
pub async fn line_lengths(
    db: &impl ConnectionTrait,
    ws: WorkspaceId,
    properties: &[PropertyId],
) -> DomainResult<HashMap<PropertyId, i64>> {
    let rows: Vec<(PropertyId, i64)> = queue_entry::Entity::find()
        .select_only()
        .column(queue_entry::Column::PropertyId)
        .column_as(queue_entry::Column::Id.count(), "n")
        .filter(queue_entry::Column::WorkspaceId.eq(ws))
        .filter(queue_entry::Column::PropertyId.is_in(properties.iter().copied()))
        .filter(queue_entry::Column::Status.eq(QueueEntryStatus::Waiting))
        .group_by(queue_entry::Column::PropertyId)
        .into_tuple()
        .all(db)
        .await?;
    let mut out: HashMap<PropertyId, i64> = properties.iter().map(|p| (*p, 0)).collect();
    out.extend(rows);
    Ok(out)
}
