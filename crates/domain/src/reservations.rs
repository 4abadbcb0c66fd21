//! The reservation operations: reserve, release, extend, convert, expire and
//! sweep. Each is one call of a function of the hold rules (the schema
//! `rules`, installed by `holdfast-server migrate` from
//! `migrations/src/rules.sql`): one round trip and one transaction, which
//! locks the property row first, so every change to a property and its
//! reservations is serialised on that row. The rules decide in SQL, under the
//! lock and by the database's clock; this module checks what needs no row
//! (roles), and turns each answer into a result and its effects.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr};
use tracing::instrument;

use crate::entities::{PropertyStatus, ReservationStatus, Role, reservation::Model as Reservation};
use crate::error::{DomainError, DomainResult, constraint, on_constraint};
use crate::ids::{ProjectId, PropertyId, ReservationId, UserId, WorkspaceId};
use crate::input;
use crate::rules::{Effects, Hold, Verdict, Written, ask, ask_as, count, key_reused, secs};

/// The rules a deployment sets: the hold time, the extensions, the per-agent
/// limit and the expiry warning. `Default` holds the defaults of every
/// binary's settings.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Hold time of a new or extended reservation.
    pub ttl: Duration,
    /// How often one reservation may be extended.
    pub max_extensions: u32,
    /// Active reservations one agent may hold at once; 0 means no limit.
    pub max_active_per_agent: u32,
    /// How long before a hold's end its agent is warned; `None`: never. A
    /// hold no longer than this gets no warning.
    pub expiry_warning: Option<Duration>,
    /// Entries that may wait in line for one property; 0 turns the line off.
    pub max_queue_length: u32,
    /// Whether a reserve and a join of the line go in one round trip first
    /// (`rules::ask_at_once`: the call alone, in autocommit, falling back to
    /// a transaction when it would wait for a lock), or always in a
    /// transaction of their own (`rules::ask`). Both run the same rules; the
    /// tests run both ways.
    ///
    /// On in the server (its settings); off in `Policy::default()`, so that
    /// a test that wants the one round trip says so. On a machine where
    /// PostgreSQL is on the loopback it measured no faster than the
    /// transaction (PostgreSQL's own work dominates there); where PostgreSQL
    /// is across a network, a free plot costs one round trip instead of
    /// three, and a pooled connection is held a third as long. It relies on
    /// no pooled connection being left inside a transaction, which
    /// `db::begin` sees to, and on the clocks of this host and PostgreSQL's
    /// agreeing within seconds (a call that seems late goes again in a
    /// transaction).
    pub one_round_trip: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(24 * 3600),
            max_extensions: 2,
            max_active_per_agent: 10,
            expiry_warning: Some(Duration::from_secs(3600)),
            max_queue_length: 5,
            one_round_trip: false,
        }
    }
}

impl Policy {
    /// When a hold that runs from `from` to `expires_at` is to be warned of
    /// its end, if at all.
    pub fn warning_at(
        &self,
        from: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let warning = chrono::Duration::from_std(self.expiry_warning?).ok()?;
        let at = expires_at - warning;
        (at > from).then_some(at)
    }
}

/// The person a hold (or a place in line) is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Buyer {
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
}

impl Buyer {
    /// Bounded, free of control characters; the phone and email loosely
    /// shaped like ones.
    pub fn check(&self) -> DomainResult<()> {
        input::check_text("the buyer's name", &self.name, input::MAX_NAME_CHARS)?;
        if let Some(phone) = &self.phone {
            input::check_phone(phone)?;
        }
        if let Some(email) = &self.email {
            input::check_email(email)?;
        }
        Ok(())
    }
}

/// A reserve call: the property, and optionally who the hold is for, a note,
/// and the idempotency key that makes a retry answer the first call's
/// reservation. A bare `PropertyId` is a call with none of these.
#[derive(Debug, Clone, Default)]
pub struct ReserveRequest {
    pub property_id: PropertyId,
    pub buyer: Option<Buyer>,
    pub note: Option<String>,
    pub idempotency_key: Option<String>,
}

impl From<PropertyId> for ReserveRequest {
    fn from(property_id: PropertyId) -> Self {
        Self {
            property_id,
            ..Default::default()
        }
    }
}

impl ReserveRequest {
    fn check(&self) -> DomainResult<()> {
        if let Some(buyer) = &self.buyer {
            buyer.check()?;
        }
        if let Some(note) = &self.note {
            input::check_text("a note", note, input::MAX_NOTE_CHARS)?;
        }
        if let Some(key) = &self.idempotency_key {
            input::check_text("an idempotency key", key, input::MAX_KEY_CHARS)?;
        }
        Ok(())
    }
}

/// What `reserve` answers: the caller's hold, and whether an earlier call
/// with the same idempotency key made it (this call then changed nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    pub reservation: Reservation,
    pub project_id: ProjectId,
    pub replayed: bool,
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
/// workspace not suspended. `reserve` checks both under its own lock, so the
/// hot path needs no separate lookup of the caller.
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

/// What an expire call did. Only `Expired` changed anything.
#[derive(Debug, Clone)]
pub enum ExpireOutcome {
    Expired(Box<Hold>),
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

/// Reserves `property_id` for the caller for `policy.ttl`: one call of
/// `rules.reserve`, which checks the caller (an active user of an active
/// workspace) under the plot's lock, takes over a lapsed hold, counts the
/// agent's holds and begins the new one. The caller schedules the release job
/// after it returns.
pub async fn reserve(
    db: &DatabaseConnection,
    policy: &Policy,
    caller: impl Into<Caller>,
    request: impl Into<ReserveRequest>,
) -> Written<Reserved> {
    let request = request.into();
    if let Err(bad) = request.check() {
        return Written::failed(bad);
    }
    reserve_as(db, policy, caller.into(), &request).await
}

#[instrument(skip_all, fields(workspace.id = %caller.workspace_id, user.id = %caller.user_id, property.id = %request.property_id))]
async fn reserve_as(
    db: &DatabaseConnection,
    policy: &Policy,
    caller: Caller,
    request: &ReserveRequest,
) -> Written<Reserved> {
    let buyer = request.buyer.as_ref();
    let answer = ask_as(
        db,
        policy,
        "reserve($1, $2, $3, make_interval(secs => $4), $5, ROW($6, $7, $8), $9, $10)",
        || {
            vec![
                caller.workspace_id.0.into(),
                caller.user_id.0.into(),
                request.property_id.0.into(),
                secs(policy.ttl),
                count(policy.max_active_per_agent),
                buyer.map(|b| b.name.clone()).into(),
                buyer.and_then(|b| b.phone.clone()).into(),
                buyer.and_then(|b| b.email.clone()).into(),
                request.note.clone().into(),
                request.idempotency_key.clone().into(),
            ]
        },
    )
    .await;
    match answer {
        Ok(answer) => {
            let replayed = matches!(answer.verdict, Verdict::Replayed { .. });
            let Written { result, effects } = answer.into_written();
            Written {
                result: result.map(|hold| Reserved {
                    reservation: hold.reservation,
                    project_id: hold.project_id,
                    replayed,
                }),
                effects,
            }
        }
        // The unique index on (agent, key) caught one key on two plots at
        // once. The partial unique index caught a second ACTIVE hold:
        // unreachable through the lock, but if it ever fires it means "taken".
        Err(DomainError::Internal(e) | DomainError::Unavailable(e)) => {
            Written::failed(match constraint(&e).as_deref() {
                Some("reservation_idempotency_key") => key_reused(),
                _ => on_constraint(e, "reservation_one_active_per_property", || {
                    DomainError::PropertyUnavailable {
                        status: PropertyStatus::Reserved,
                        reserved_until: None,
                        project_archived: false,
                    }
                }),
            })
        }
        Err(e) => Written::failed(e),
    }
}

/// Ends an active reservation early: its agent, a manager or an admin.
#[instrument(skip_all, fields(workspace.id = %actor.workspace_id, user.id = %actor.user_id, reservation.id = %reservation_id))]
pub async fn release(
    db: &DatabaseConnection,
    policy: &Policy,
    actor: &Actor,
    reservation_id: ReservationId,
) -> Written<Hold> {
    end_by_person(
        db,
        policy,
        actor,
        reservation_id,
        ReservationStatus::Released,
    )
    .await
}

/// Turns an active reservation into a sale: the property becomes SOLD.
#[instrument(skip_all, fields(workspace.id = %actor.workspace_id, user.id = %actor.user_id, reservation.id = %reservation_id))]
pub async fn convert(
    db: &DatabaseConnection,
    policy: &Policy,
    actor: &Actor,
    reservation_id: ReservationId,
) -> Written<Hold> {
    end_by_person(
        db,
        policy,
        actor,
        reservation_id,
        ReservationStatus::Converted,
    )
    .await
}

/// Release and convert: the hold ends by the rules' one path, which hands a
/// released plot to the next in line (under `policy`) and closes a sold
/// plot's line.
async fn end_by_person(
    db: &DatabaseConnection,
    policy: &Policy,
    actor: &Actor,
    reservation_id: ReservationId,
    status: ReservationStatus,
) -> Written<Hold> {
    let answer = ask(
        db,
        "end_by_person($1, $2, $3, $4, $5, make_interval(secs => $6), $7)",
        [
            actor.workspace_id.0.into(),
            actor.user_id.0.into(),
            actor.role.is_manager().into(),
            reservation_id.0.into(),
            status.as_str().into(),
            secs(policy.ttl),
            count(policy.max_active_per_agent),
        ],
    )
    .await;
    match answer {
        Ok(answer) => answer.into_written(),
        Err(e) => Written::failed(e),
    }
}

/// Pushes `expires_at` to one hold time from now: managers and admins only,
/// at most `policy.max_extensions` times. Bumps `version`, so the release job
/// scheduled for the earlier expiry finds nothing to do.
#[instrument(skip_all, fields(workspace.id = %actor.workspace_id, user.id = %actor.user_id, reservation.id = %reservation_id))]
pub async fn extend(
    db: &DatabaseConnection,
    policy: &Policy,
    actor: &Actor,
    reservation_id: ReservationId,
) -> Written<Hold> {
    if !actor.role.is_manager() {
        return Written::failed(DomainError::Forbidden(
            "only managers and admins may extend a reservation",
        ));
    }
    let answer = ask(
        db,
        "extend($1, $2, make_interval(secs => $3), $4)",
        [
            actor.workspace_id.0.into(),
            reservation_id.0.into(),
            secs(policy.ttl),
            count(policy.max_extensions),
        ],
    )
    .await;
    match answer {
        Ok(answer) => answer.into_written(),
        Err(e) => Written::failed(e),
    }
}

/// Ends the reservation as EXPIRED if, and only if, it is still ACTIVE, at
/// `version`, and past its `expires_at`: what the release job runs. Calling it
/// again, or with an older version, changes nothing.
#[instrument(skip_all, fields(workspace.id = %workspace_id, reservation.id = %reservation_id, reservation.version = version))]
pub async fn expire(
    db: &DatabaseConnection,
    policy: &Policy,
    workspace_id: WorkspaceId,
    reservation_id: ReservationId,
    version: i32,
) -> Written<ExpireOutcome> {
    let answer = match ask(
        db,
        "expire($1, $2, $3, make_interval(secs => $4), $5)",
        [
            workspace_id.0.into(),
            reservation_id.0.into(),
            version.into(),
            secs(policy.ttl),
            count(policy.max_active_per_agent),
        ],
    )
    .await
    {
        Ok(answer) => answer,
        Err(e) => return Written::failed(e),
    };
    let result = match &answer.verdict {
        Verdict::Expired { reservation } => answer
            .hold(*reservation)
            .map(|h| ExpireOutcome::Expired(Box::new(h))),
        Verdict::NotFound { .. } => Ok(ExpireOutcome::NotFound),
        Verdict::NotActive { status } => Ok(ExpireOutcome::NotActive(*status)),
        Verdict::Stale { current } => Ok(ExpireOutcome::StaleVersion { current: *current }),
        Verdict::NotDue { expires_at } => Ok(ExpireOutcome::NotDue {
            expires_at: *expires_at,
        }),
        other => Err(DomainError::Internal(DbErr::Custom(format!(
            "rules.expire answered {other:?}"
        )))),
    };
    Written {
        result,
        effects: answer.effects,
    }
}

/// What a warning job did. Only `Warned` sends anything.
#[derive(Debug, Clone)]
pub enum WarnOutcome {
    Warned(Box<Hold>),
    NotFound,
    /// The hold ended (or lapsed) before its warning.
    NotActive(ReservationStatus),
    /// It was extended since the job was scheduled: a newer job exists.
    StaleVersion {
        current: i32,
    },
    /// This version was warned already (the job ran twice).
    AlreadyWarned,
    /// Its warning is not due until `at` (the job ran early).
    NotDue {
        at: DateTime<Utc>,
    },
}

/// Warns of a hold's end (`policy.expiry_warning` before it) if, and only
/// if, it is still ACTIVE, at `version`, not warned at that version yet, and
/// the warning is due: what the warning job runs. Running it again changes
/// nothing.
#[instrument(skip_all, fields(workspace.id = %workspace_id, reservation.id = %reservation_id, reservation.version = version))]
pub async fn warn(
    db: &DatabaseConnection,
    workspace_id: WorkspaceId,
    reservation_id: ReservationId,
    version: i32,
    warning: Duration,
) -> Written<WarnOutcome> {
    let answer = match ask(
        db,
        "warn($1, $2, $3, make_interval(secs => $4))",
        [
            workspace_id.0.into(),
            reservation_id.0.into(),
            version.into(),
            secs(warning),
        ],
    )
    .await
    {
        Ok(answer) => answer,
        Err(e) => return Written::failed(e),
    };
    let result = match &answer.verdict {
        Verdict::Warned { reservation } => answer
            .hold(*reservation)
            .map(|h| WarnOutcome::Warned(Box::new(h))),
        Verdict::NotFound { .. } => Ok(WarnOutcome::NotFound),
        Verdict::NotActive { status } => Ok(WarnOutcome::NotActive(*status)),
        Verdict::Stale { current } => Ok(WarnOutcome::StaleVersion { current: *current }),
        Verdict::AlreadyWarned => Ok(WarnOutcome::AlreadyWarned),
        Verdict::NotDue { expires_at } => Ok(WarnOutcome::NotDue { at: *expires_at }),
        other => Err(DomainError::Internal(DbErr::Custom(format!(
            "rules.warn answered {other:?}"
        )))),
    };
    Written {
        result,
        effects: answer.effects,
    }
}

/// Ends up to `limit` lapsed reservations in one transaction, handing each
/// plot to its line (under `policy`) or freeing it; returns what it did. Property rows that another transaction
/// holds are skipped (`SKIP LOCKED`): two sweeps never wait on, or end, the
/// same hold.
#[instrument(skip(db, policy))]
pub async fn sweep_batch(
    db: &DatabaseConnection,
    policy: &Policy,
    limit: u32,
) -> DomainResult<Effects> {
    let answer = ask(
        db,
        "sweep($1, make_interval(secs => $2), $3)",
        [
            count(limit),
            secs(policy.ttl),
            count(policy.max_active_per_agent),
        ],
    )
    .await?;
    match answer.verdict {
        Verdict::Swept => Ok(answer.effects),
        other => Err(DomainError::Internal(DbErr::Custom(format!(
            "rules.sweep answered {other:?}"
        )))),
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub released: u64,
    pub batches: u32,
}

/// Longest one batch of the sweep (one transaction, one statement) may take:
/// longer than a healthy one can (the pool's statement_timeout, 30 s, and a
/// wait for a connection, 5 s). Past it the batch is dropped, rolled back,
/// and the sweep fails; the next tries again. So a silent link to PostgreSQL
/// costs a sweep this bound at most; the batches already done stay done.
pub const SWEEP_BATCH_TIMEOUT: Duration = Duration::from_secs(40);

/// Sweeps in batches of `batch_size` until no lapsed hold is left that is
/// not locked by someone else; `on_batch` sees each batch's effects after it
/// commits. Each batch is bounded by [`SWEEP_BATCH_TIMEOUT`].
pub async fn sweep(
    db: &DatabaseConnection,
    policy: &Policy,
    batch_size: u32,
    mut on_batch: impl FnMut(&Effects),
) -> DomainResult<SweepReport> {
    let mut report = SweepReport::default();
    loop {
        let batch = tokio::time::timeout(SWEEP_BATCH_TIMEOUT, sweep_batch(db, policy, batch_size));
        let swept = batch.await.map_err(|_| {
            DomainError::Unavailable(DbErr::Custom(format!(
                "no answer from PostgreSQL within {SWEEP_BATCH_TIMEOUT:?}"
            )))
        })??;
        let ended = swept.ended.len();
        if ended > 0 {
            report.batches += 1;
            report.released += ended as u64;
            on_batch(&swept);
        }
        if ended < batch_size as usize {
            return Ok(report);
        }
    }
}
