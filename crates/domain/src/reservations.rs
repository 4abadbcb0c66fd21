//! The reservation rules and the locking repository: reserve, release, extend,
//! convert, expire and sweep. Each operation is one transaction that locks the
//! property row first (`FOR UPDATE`), so every change to a property and its
//! reservations is serialised on that row, and no two operations can ever hold
//! the same property at once. "Now" is always the database's clock.
//!
//! Lock order, everywhere: property row, then (reserve only) the agent's row,
//! then reservation rows. Nothing locks a reservation without first holding
//! its property, so no two operations here can deadlock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, FromQueryResult,
    QueryResult, Statement, TransactionTrait, Value,
};
use tracing::instrument;

use crate::entities::{
    EndSource, PropertyStatus, ReservationStatus, Role, WorkspaceStatus,
    reservation::Model as Reservation,
};
use crate::error::{DomainError, DomainResult, constraint, is_unique_violation};
use crate::ids::{ProjectId, PropertyId, ReservationId, UserId, WorkspaceId};

/// The rules a deployment sets (CONTRACT.md: `HOLDFAST_RESERVATION_TTL`,
/// `HOLDFAST_MAX_EXTENSIONS`, `HOLDFAST_MAX_ACTIVE_PER_AGENT`).
#[derive(Debug, Clone)]
pub struct Policy {
    /// Hold time of a new or extended reservation.
    pub ttl: Duration,
    /// How often one reservation may be extended.
    pub max_extensions: u32,
    /// Active reservations one agent may hold at once; 0 means no limit.
    pub max_active_per_agent: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(24 * 3600),
            max_extensions: 2,
            max_active_per_agent: 10,
        }
    }
}

/// Who is acting: the authenticated user, in their workspace, with their role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub user_id: UserId,
    pub workspace_id: WorkspaceId,
    pub role: Role,
}

/// Who a request names as its caller (the user and workspace of a verified
/// token) before anything checked that the user is still active and the
/// workspace not suspended. `reserve` checks both inside its own lock
/// statement, so the hot path needs no separate lookup of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: UserId,
    pub workspace_id: WorkspaceId,
}

impl From<&Actor> for Caller {
    fn from(actor: &Actor) -> Self {
        Self {
            user_id: actor.user_id,
            workspace_id: actor.workspace_id,
        }
    }
}

/// A new reservation, and the lapsed one it took over, if any.
#[derive(Debug, Clone)]
pub struct Reserved {
    pub reservation: Reservation,
    pub project_id: ProjectId,
    pub taken_over: Option<Reservation>,
}

/// A reservation that an operation changed, with its property's project (for
/// change events) and the property's status before the change.
#[derive(Debug, Clone)]
pub struct Changed {
    pub reservation: Reservation,
    pub project_id: ProjectId,
    pub previous_property_status: PropertyStatus,
}

/// What an expire call did. Only `Expired` changed anything.
#[derive(Debug, Clone)]
pub enum ExpireOutcome {
    Expired(Changed),
    /// No such reservation in that workspace.
    NotFound,
    /// It had already ended (released, converted, expired).
    NotActive(ReservationStatus),
    /// It was extended since the job was scheduled: a newer job exists.
    StaleVersion {
        current: i32,
    },
    /// Its time has not come (the job ran early).
    NotDue {
        expires_at: DateTime<Utc>,
    },
}

/// One reservation the sweep ended.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct SweptReservation {
    pub id: ReservationId,
    pub workspace_id: WorkspaceId,
    pub property_id: PropertyId,
    pub project_id: ProjectId,
    pub agent_id: UserId,
    pub expires_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
}

/// The locked property row, as the reservation rules need it.
#[derive(Debug, FromQueryResult)]
struct LockedProperty {
    project_id: ProjectId,
    status: PropertyStatus,
    reserved_until: Option<DateTime<Utc>>,
}

/// The property row `reserve` locks, and whether its caller may act (an
/// active user of a workspace that is not suspended).
#[derive(Debug, FromQueryResult)]
struct ReserveLock {
    #[sea_orm(nested)]
    property: LockedProperty,
    caller_ok: bool,
}

fn stmt(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

fn secs(d: Duration) -> Value {
    d.as_secs_f64().into()
}

async fn one<T: FromQueryResult>(
    conn: &impl ConnectionTrait,
    statement: Statement,
) -> DomainResult<Option<T>> {
    match conn.query_one_raw(statement).await? {
        Some(row) => Ok(Some(T::from_query_result(&row, "")?)),
        None => Ok(None),
    }
}

/// Reserves `property_id` for the caller for `policy.ttl`.
///
/// One transaction: lock the property (and the agent, when there is a limit)
/// in the statement that also checks the caller (an active user of an active
/// workspace), take over a lapsed hold, count the agent's holds, insert the
/// reservation and mark the property RESERVED. No network I/O but PostgreSQL
/// inside it; the caller schedules the release job after it returns.
pub async fn reserve(
    db: &DatabaseConnection,
    policy: &Policy,
    caller: impl Into<Caller>,
    property_id: PropertyId,
) -> DomainResult<Reserved> {
    reserve_as(db, policy, caller.into(), property_id).await
}

#[instrument(skip_all, fields(workspace.id = %caller.workspace_id, user.id = %caller.user_id, property.id = %property_id), err(level = "debug"))]
async fn reserve_as(
    db: &DatabaseConnection,
    policy: &Policy,
    caller: Caller,
    property_id: PropertyId,
) -> DomainResult<Reserved> {
    let txn = db.begin().await?;
    let limited = policy.max_active_per_agent > 0;

    // Lock the property, and with it the agent's row when holds are counted,
    // so that two reserves by one agent count one after the other. The same
    // statement reads whether the caller may act: one round trip for both.
    let lock_sql = if limited {
        "SELECT p.project_id, p.status, p.reserved_until, u.active AND w.status = 'ACTIVE' AS caller_ok \
         FROM property p, app_user u, workspace w \
         WHERE p.id = $1 AND p.workspace_id = $2 AND u.id = $3 AND u.workspace_id = $2 AND w.id = $2 \
         FOR UPDATE OF p FOR NO KEY UPDATE OF u"
    } else {
        "SELECT p.project_id, p.status, p.reserved_until, u.active AND w.status = 'ACTIVE' AS caller_ok \
         FROM property p, app_user u, workspace w \
         WHERE p.id = $1 AND p.workspace_id = $2 AND u.id = $3 AND u.workspace_id = $2 AND w.id = $2 \
         FOR UPDATE OF p"
    };
    let locked: Option<ReserveLock> = one(
        &txn,
        stmt(
            lock_sql,
            [
                property_id.0.into(),
                caller.workspace_id.0.into(),
                caller.user_id.0.into(),
            ],
        ),
    )
    .await?;
    let property = match locked {
        Some(locked) if locked.caller_ok => locked.property,
        // No row: either the property or the caller is missing. The caller
        // comes first, as it would have at the door.
        _ => {
            check_caller(&txn, caller).await?;
            return Err(DomainError::NotFound("property"));
        }
    };

    let taken_over = match property.status {
        PropertyStatus::Available => None,
        PropertyStatus::Sold => {
            return Err(DomainError::PropertyUnavailable {
                status: PropertyStatus::Sold,
                reserved_until: None,
            });
        }
        PropertyStatus::Reserved => {
            // Under the lock, the database's clock decides whether the hold lapsed.
            let ended: Option<Reservation> = one(
                &txn,
                stmt(
                    "UPDATE reservation SET status = 'EXPIRED', ended_at = clock_timestamp(), \
                     end_source = 'takeover' \
                     WHERE property_id = $1 AND status = 'ACTIVE' AND expires_at <= clock_timestamp() \
                     RETURNING *",
                    [property_id.0.into()],
                ),
            )
            .await?;
            match ended {
                Some(ended) => Some(ended),
                None => {
                    return Err(DomainError::PropertyUnavailable {
                        status: PropertyStatus::Reserved,
                        reserved_until: property.reserved_until,
                    });
                }
            }
        }
    };

    if limited {
        let held = count_active_holds(&txn, caller.user_id).await?;
        if held >= i64::from(policy.max_active_per_agent) {
            return Err(DomainError::ReservationLimitReached {
                limit: policy.max_active_per_agent,
            });
        }
    }

    let reservation: Reservation = one(
        &txn,
        stmt(
            "WITH t AS (SELECT clock_timestamp() AS now), \
             created AS ( \
               INSERT INTO reservation (id, workspace_id, property_id, agent_id, status, created_at, expires_at) \
               SELECT $1, $2, $3, $4, 'ACTIVE', t.now, t.now + make_interval(secs => $5) FROM t \
               RETURNING *), \
             held AS ( \
               UPDATE property SET status = 'RESERVED', reserved_by_id = created.agent_id, \
                 reserved_until = created.expires_at, updated_at = created.created_at \
               FROM created WHERE property.id = created.property_id) \
             SELECT * FROM created",
            [
                ReservationId::new().0.into(),
                caller.workspace_id.0.into(),
                property_id.0.into(),
                caller.user_id.0.into(),
                secs(policy.ttl),
            ],
        ),
    )
    .await
    .map_err(|e| match e {
        // The partial unique index caught a second ACTIVE hold: unreachable
        // through the lock above, but if it ever fires it means "taken".
        DomainError::Internal(ref db) | DomainError::Unavailable(ref db)
            if is_unique_violation(db)
                && constraint(db).as_deref() == Some("reservation_one_active_per_property") =>
        {
            DomainError::PropertyUnavailable {
                status: PropertyStatus::Reserved,
                reserved_until: None,
            }
        }
        e => e,
    })?
    .ok_or(DomainError::NotFound("property"))?;

    txn.commit().await?;
    Ok(Reserved {
        reservation,
        project_id: property.project_id,
        taken_over,
    })
}

/// Whether a caller may act at all, from its user's `active` flag and its
/// workspace's status (`None`: no such user in that workspace). The one
/// place that decides it, for the server's door and for `reserve` alike.
pub fn caller_standing(found: Option<(bool, WorkspaceStatus)>) -> DomainResult<()> {
    match found {
        None => Err(DomainError::Unauthenticated(
            "the token's user no longer exists",
        )),
        Some((false, _)) => Err(DomainError::Unauthenticated(
            "this user has been deactivated",
        )),
        Some((true, WorkspaceStatus::Suspended)) => {
            Err(DomainError::Forbidden("this workspace is suspended"))
        }
        Some((true, WorkspaceStatus::Active)) => Ok(()),
    }
}

/// Why `caller` may not act, read from the database (the slow path of
/// `reserve`, when its lock statement found no row or a refused caller).
async fn check_caller(conn: &impl ConnectionTrait, caller: Caller) -> DomainResult<()> {
    #[derive(FromQueryResult)]
    struct Row {
        active: bool,
        status: WorkspaceStatus,
    }
    let row: Option<Row> = one(
        conn,
        stmt(
            "SELECT u.active, w.status FROM app_user u JOIN workspace w ON w.id = u.workspace_id \
             WHERE u.id = $1 AND u.workspace_id = $2",
            [caller.user_id.0.into(), caller.workspace_id.0.into()],
        ),
    )
    .await?;
    caller_standing(row.map(|r| (r.active, r.status)))
}

/// The agent's reservations that hold a property right now.
async fn count_active_holds(conn: &impl ConnectionTrait, agent: UserId) -> DomainResult<i64> {
    #[derive(FromQueryResult)]
    struct Count {
        n: i64,
    }
    let count: Option<Count> = one(
        conn,
        stmt(
            "SELECT count(*) AS n FROM reservation \
             WHERE agent_id = $1 AND status = 'ACTIVE' AND expires_at > clock_timestamp()",
            [agent.0.into()],
        ),
    )
    .await?;
    Ok(count.map_or(0, |c| c.n))
}

/// A reservation loaded under its property's lock, with the database's now.
struct Locked {
    txn: DatabaseTransaction,
    reservation: Reservation,
    property: LockedProperty,
    now: DateTime<Utc>,
}

impl Locked {
    /// Whether the reservation holds its property at `now`.
    fn ensure_holding(&self) -> DomainResult<()> {
        let r = &self.reservation;
        match r.status {
            ReservationStatus::Active if r.expires_at > self.now => Ok(()),
            // Lapsed but not yet recorded: it already reads EXPIRED.
            ReservationStatus::Active => Err(DomainError::ReservationNotActive {
                status: ReservationStatus::Expired,
            }),
            status => Err(DomainError::ReservationNotActive { status }),
        }
    }

    fn ensure_owner_or_manager(&self, actor: &Actor) -> DomainResult<()> {
        if self.reservation.agent_id == actor.user_id || actor.role.is_manager() {
            Ok(())
        } else {
            Err(DomainError::Forbidden(
                "only its agent, a manager or an admin may do this to a reservation",
            ))
        }
    }
}

/// Locks the property of a reservation, then reads the reservation.
async fn lock_reservation(
    db: &DatabaseConnection,
    workspace_id: WorkspaceId,
    reservation_id: ReservationId,
) -> DomainResult<Option<Locked>> {
    let txn = db.begin().await?;
    let property: Option<LockedProperty> = one(
        &txn,
        stmt(
            "SELECT p.project_id, p.status, p.reserved_until FROM property p \
             WHERE p.id = (SELECT property_id FROM reservation WHERE id = $1 AND workspace_id = $2) \
             FOR UPDATE",
            [reservation_id.0.into(), workspace_id.0.into()],
        ),
    )
    .await?;
    let Some(property) = property else {
        return Ok(None);
    };
    let row: QueryResult = txn
        .query_one_raw(stmt(
            "SELECT r.*, clock_timestamp() AS db_now FROM reservation r WHERE r.id = $1",
            [reservation_id.0.into()],
        ))
        .await?
        .ok_or(DomainError::NotFound("reservation"))?;
    let reservation = Reservation::from_query_result(&row, "")?;
    let now: DateTime<Utc> = row.try_get("", "db_now")?;
    Ok(Some(Locked {
        txn,
        reservation,
        property,
        now,
    }))
}

/// Ends a locked reservation with `status` (RELEASED, EXPIRED or CONVERTED)
/// and sets its property to `property_status`, in one statement; commits.
async fn end_reservation(
    locked: Locked,
    status: ReservationStatus,
    property_status: PropertyStatus,
    ended_by: Option<UserId>,
    source: Option<EndSource>,
) -> DomainResult<Changed> {
    let Locked { txn, property, .. } = locked;
    let reservation: Reservation = one(
        &txn,
        stmt(
            "WITH ended AS ( \
               UPDATE reservation SET status = $2, ended_at = clock_timestamp(), ended_by_id = $3, \
                 end_source = $4 \
               WHERE id = $1 RETURNING *), \
             freed AS ( \
               UPDATE property SET status = $5, reserved_by_id = NULL, reserved_until = NULL, \
                 updated_at = ended.ended_at \
               FROM ended WHERE property.id = ended.property_id) \
             SELECT * FROM ended",
            [
                locked.reservation.id.0.into(),
                status.as_str().into(),
                ended_by.map(|u| u.0).into(),
                source.map(|s| s.as_str().to_owned()).into(),
                property_status.as_str().into(),
            ],
        ),
    )
    .await?
    .ok_or(DomainError::NotFound("reservation"))?;
    txn.commit().await?;
    Ok(Changed {
        reservation,
        project_id: property.project_id,
        previous_property_status: property.status,
    })
}

/// Ends an active reservation early: its agent, a manager or an admin.
#[instrument(skip_all, fields(workspace.id = %actor.workspace_id, user.id = %actor.user_id, reservation.id = %reservation_id), err(level = "debug"))]
pub async fn release(
    db: &DatabaseConnection,
    actor: &Actor,
    reservation_id: ReservationId,
) -> DomainResult<Changed> {
    end_by_person(
        db,
        actor,
        reservation_id,
        ReservationStatus::Released,
        PropertyStatus::Available,
    )
    .await
}

/// Turns an active reservation into a sale: the property becomes SOLD.
#[instrument(skip_all, fields(workspace.id = %actor.workspace_id, user.id = %actor.user_id, reservation.id = %reservation_id), err(level = "debug"))]
pub async fn convert(
    db: &DatabaseConnection,
    actor: &Actor,
    reservation_id: ReservationId,
) -> DomainResult<Changed> {
    end_by_person(
        db,
        actor,
        reservation_id,
        ReservationStatus::Converted,
        PropertyStatus::Sold,
    )
    .await
}

/// Release and convert: a person ends a hold that is still holding, if it is
/// theirs or they manage; recorded as ended by them, as its agent or a manager.
async fn end_by_person(
    db: &DatabaseConnection,
    actor: &Actor,
    reservation_id: ReservationId,
    status: ReservationStatus,
    property_status: PropertyStatus,
) -> DomainResult<Changed> {
    let locked = lock_reservation(db, actor.workspace_id, reservation_id)
        .await?
        .ok_or(DomainError::NotFound("reservation"))?;
    locked.ensure_owner_or_manager(actor)?;
    locked.ensure_holding()?;
    let source = if locked.reservation.agent_id == actor.user_id {
        EndSource::Agent
    } else {
        EndSource::Manager
    };
    end_reservation(
        locked,
        status,
        property_status,
        Some(actor.user_id),
        Some(source),
    )
    .await
}

/// Pushes `expires_at` to one hold time from now: managers and admins only,
/// at most `policy.max_extensions` times. Bumps `version`, so the release job
/// scheduled for the earlier expiry finds nothing to do.
#[instrument(skip_all, fields(workspace.id = %actor.workspace_id, user.id = %actor.user_id, reservation.id = %reservation_id), err(level = "debug"))]
pub async fn extend(
    db: &DatabaseConnection,
    policy: &Policy,
    actor: &Actor,
    reservation_id: ReservationId,
) -> DomainResult<Changed> {
    if !actor.role.is_manager() {
        return Err(DomainError::Forbidden(
            "only managers and admins may extend a reservation",
        ));
    }
    let locked = lock_reservation(db, actor.workspace_id, reservation_id)
        .await?
        .ok_or(DomainError::NotFound("reservation"))?;
    locked.ensure_holding()?;
    if locked.reservation.extension_count
        >= i32::try_from(policy.max_extensions).unwrap_or(i32::MAX)
    {
        return Err(DomainError::ExtensionLimitReached {
            limit: policy.max_extensions,
        });
    }
    let Locked { txn, property, .. } = locked;
    let reservation: Reservation = one(
        &txn,
        stmt(
            "WITH extended AS ( \
               UPDATE reservation SET expires_at = clock_timestamp() + make_interval(secs => $2), \
                 extension_count = extension_count + 1, version = version + 1 \
               WHERE id = $1 RETURNING *), \
             held AS ( \
               UPDATE property SET reserved_until = extended.expires_at, updated_at = clock_timestamp() \
               FROM extended WHERE property.id = extended.property_id) \
             SELECT * FROM extended",
            [reservation_id.0.into(), secs(policy.ttl)],
        ),
    )
    .await?
    .ok_or(DomainError::NotFound("reservation"))?;
    txn.commit().await?;
    Ok(Changed {
        reservation,
        project_id: property.project_id,
        previous_property_status: property.status,
    })
}

/// Ends the reservation as EXPIRED if, and only if, it is still ACTIVE, at
/// `version`, and past its `expires_at`: what the release job runs. Calling it
/// again, or with an older version, changes nothing.
#[instrument(skip_all, fields(workspace.id = %workspace_id, reservation.id = %reservation_id, reservation.version = version))]
pub async fn expire(
    db: &DatabaseConnection,
    workspace_id: WorkspaceId,
    reservation_id: ReservationId,
    version: i32,
) -> DomainResult<ExpireOutcome> {
    let Some(locked) = lock_reservation(db, workspace_id, reservation_id).await? else {
        return Ok(ExpireOutcome::NotFound);
    };
    let r = &locked.reservation;
    if r.status != ReservationStatus::Active {
        return Ok(ExpireOutcome::NotActive(r.status));
    }
    if r.version != version {
        return Ok(ExpireOutcome::StaleVersion { current: r.version });
    }
    if r.expires_at > locked.now {
        return Ok(ExpireOutcome::NotDue {
            expires_at: r.expires_at,
        });
    }
    end_reservation(
        locked,
        ReservationStatus::Expired,
        PropertyStatus::Available,
        None,
        Some(EndSource::Job),
    )
    .await
    .map(ExpireOutcome::Expired)
}

/// Ends up to `limit` lapsed reservations in one transaction and frees their
/// properties. Property rows that another transaction holds are skipped
/// (`SKIP LOCKED`): that transaction is releasing, taking over or extending
/// them, and two sweeps never wait on, or release, the same row.
#[instrument(skip(db))]
pub async fn sweep_batch(
    db: &DatabaseConnection,
    limit: u32,
) -> DomainResult<Vec<SweptReservation>> {
    let txn = db.begin().await?;
    let rows = txn
        .query_all_raw(stmt(
            "WITH due AS ( \
               SELECT p.id, p.project_id FROM property p \
               WHERE p.status = 'RESERVED' AND p.reserved_until <= clock_timestamp() \
               ORDER BY p.reserved_until LIMIT $1 \
               FOR UPDATE SKIP LOCKED), \
             ended AS ( \
               UPDATE reservation r SET status = 'EXPIRED', ended_at = clock_timestamp(), \
                 end_source = 'sweep' \
               FROM due WHERE r.property_id = due.id AND r.status = 'ACTIVE' \
                 AND r.expires_at <= clock_timestamp() \
               RETURNING r.id, r.workspace_id, r.property_id, due.project_id, r.agent_id, \
                 r.expires_at, r.ended_at), \
             freed AS ( \
               UPDATE property p SET status = 'AVAILABLE', reserved_by_id = NULL, \
                 reserved_until = NULL, updated_at = ended.ended_at \
               FROM ended WHERE p.id = ended.property_id) \
             SELECT * FROM ended",
            [i64::from(limit).into()],
        ))
        .await?;
    let swept = rows
        .iter()
        .map(|row| SweptReservation::from_query_result(row, ""))
        .collect::<Result<Vec<_>, _>>()?;
    txn.commit().await?;
    Ok(swept)
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub released: u64,
    pub batches: u32,
}

/// Sweeps in batches of `batch_size` until no lapsed hold is left that is
/// not locked by someone else; `on_batch` sees each batch after it commits.
pub async fn sweep(
    db: &DatabaseConnection,
    batch_size: u32,
    mut on_batch: impl FnMut(&[SweptReservation]),
) -> DomainResult<SweepReport> {
    let mut report = SweepReport::default();
    loop {
        let swept = sweep_batch(db, batch_size).await?;
        if !swept.is_empty() {
            report.batches += 1;
            report.released += swept.len() as u64;
            on_batch(&swept);
        }
        if swept.len() < batch_size as usize {
            return Ok(report);
        }
    }
}
