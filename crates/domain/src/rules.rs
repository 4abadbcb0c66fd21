//! How the domain calls the hold rules (`migrations/src/rules.sql`): one
//! function per operation, in a transaction of its own, answering an outcome
//! and the effects it committed (see the top of rules.sql), which this module
//! reads into Rust types.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, Value};
use serde::Deserialize;

use crate::entities::queue_entry::Model as QueueEntry;
use crate::entities::{
    PropertyStatus, QueueEntryStatus, ReservationStatus, WorkspaceStatus,
    reservation::Model as Reservation,
};
use crate::error::{DomainError, DomainResult, sqlstate};
use crate::ids::{ProjectId, PropertyId, QueueEntryId, ReservationId, WorkspaceId};

/// A reservation with its property's project and code, as events and jobs
/// need it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Hold {
    #[serde(flatten)]
    pub reservation: Reservation,
    pub project_id: ProjectId,
    pub property_code: String,
    /// The property's price now.
    #[serde(default)]
    pub property_price: Option<String>,
}

/// A change of a plot's status that no hold made: a withdrawal or a restore.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PlotChange {
    pub workspace_id: WorkspaceId,
    pub project_id: ProjectId,
    pub property_id: PropertyId,
    pub code: String,
    pub price: Option<String>,
    pub previous_status: PropertyStatus,
    pub status: PropertyStatus,
    pub at: DateTime<Utc>,
}

/// What a write committed, for the work owed after the commit: a release job
/// for each hold that began or was extended, a live event for each change, and
/// the metrics of each end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Effects {
    /// Holds ended (released, converted, expired), in the order they ended.
    #[serde(default)]
    pub ended: Vec<Hold>,
    /// Holds begun.
    #[serde(default)]
    pub started: Vec<Hold>,
    /// Holds whose end moved later.
    #[serde(default)]
    pub extended: Vec<Hold>,
    /// Holds whose agent is warned now that their end is near.
    #[serde(default)]
    pub warned: Vec<Hold>,
    /// Queue entries whose status this call set (joined, promoted, left,
    /// skipped, closed), as they are now.
    #[serde(default)]
    pub entries: Vec<QueueEntry>,
    /// Plots whose status changed without a hold (withdrawn, restored).
    #[serde(default)]
    pub changed: Vec<PlotChange>,
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        self.ended.is_empty()
            && self.started.is_empty()
            && self.extended.is_empty()
            && self.warned.is_empty()
            && self.entries.is_empty()
            && self.changed.is_empty()
    }
}

/// What a write answers: the caller's result, and what it committed. The
/// effects are owed even when the result is an error: a call may be refused
/// after it ended a lapsed hold it found.
#[derive(Debug)]
pub struct Written<T> {
    pub result: DomainResult<T>,
    pub effects: Effects,
}

/// A write that owes nothing after its commit (no hold or entry changed).
impl<T> From<DomainResult<T>> for Written<T> {
    fn from(result: DomainResult<T>) -> Self {
        Self {
            result,
            effects: Effects::default(),
        }
    }
}

impl<T> Written<T> {
    pub(crate) fn failed(err: DomainError) -> Self {
        Err(err).into()
    }
}

/// How the rules answer: an outcome, the effects they committed, and the
/// reservation a replayed call answers.
#[derive(Debug, Deserialize)]
pub(crate) struct Answer {
    #[serde(flatten)]
    pub verdict: Verdict,
    #[serde(flatten)]
    pub effects: Effects,
    #[serde(default)]
    pub replayed: Vec<Hold>,
    /// The entry a leave answers, as it is now.
    #[serde(default)]
    pub entry_now: Vec<QueueEntry>,
}

/// The outcomes of the rules' functions (see each function in rules.sql).
#[derive(Debug, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(crate) enum Verdict {
    Reserved {
        reservation: ReservationId,
    },
    Ended {
        reservation: ReservationId,
    },
    Extended {
        reservation: ReservationId,
    },
    Expired {
        reservation: ReservationId,
    },
    Replayed {
        reservation: ReservationId,
    },
    Warned {
        reservation: ReservationId,
    },
    AlreadyWarned,
    KeyReused,
    Swept,
    Waiting {
        entry: QueueEntryId,
    },
    Promoted {
        entry: QueueEntryId,
    },
    Left {
        entry: QueueEntryId,
    },
    Withdrawn {
        property: PropertyId,
    },
    Restored {
        property: PropertyId,
    },
    NotWithdrawn {
        status: PropertyStatus,
    },
    AlreadyQueued,
    QueueFull {
        limit: u32,
    },
    NotWaiting {
        status: QueueEntryStatus,
    },
    Refused {
        standing: Standing,
    },
    NotFound {
        what: Thing,
    },
    Forbidden,
    Unavailable {
        status: PropertyStatus,
        reserved_until: Option<DateTime<Utc>>,
        /// The plot's project is archived.
        #[serde(default)]
        archived: bool,
    },
    Limit {
        limit: u32,
    },
    NotActive {
        status: ReservationStatus,
    },
    ExtensionLimit {
        limit: u32,
    },
    Stale {
        current: i32,
    },
    NotDue {
        expires_at: DateTime<Utc>,
    },
}

/// Why the rules refused a caller (`rules.standing`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Standing {
    Gone,
    Deactivated,
    Suspended,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Thing {
    Property,
    Reservation,
    QueueEntry,
}

impl Verdict {
    /// The error an outcome that is not the caller's success means.
    pub fn into_error(self) -> DomainError {
        match self {
            Verdict::Refused { standing } => {
                let found = match standing {
                    Standing::Gone => None,
                    Standing::Deactivated => Some((false, WorkspaceStatus::Active)),
                    Standing::Suspended => Some((true, WorkspaceStatus::Suspended)),
                };
                caller_standing(found)
                    .err()
                    .unwrap_or(DomainError::Forbidden("this caller may not act"))
            }
            Verdict::NotFound { what } => DomainError::NotFound(match what {
                Thing::Property => "property",
                Thing::Reservation => "reservation",
                Thing::QueueEntry => "queue entry",
            }),
            Verdict::Forbidden => {
                DomainError::Forbidden("only its agent, a manager or an admin may do this")
            }
            Verdict::Unavailable {
                status,
                reserved_until,
                archived,
            } => DomainError::PropertyUnavailable {
                status,
                reserved_until,
                project_archived: archived,
            },
            Verdict::Limit { limit } => DomainError::ReservationLimitReached { limit },
            Verdict::NotActive { status } => DomainError::ReservationNotActive { status },
            Verdict::ExtensionLimit { limit } => DomainError::ExtensionLimitReached { limit },
            Verdict::KeyReused => key_reused(),
            Verdict::AlreadyQueued => DomainError::AlreadyQueued,
            Verdict::QueueFull { limit } => DomainError::QueueFull { limit },
            Verdict::NotWaiting { status } => DomainError::InvalidInput(format!(
                "the entry no longer waits in line (it is {})",
                status.as_str()
            )),
            Verdict::NotWithdrawn { status } => DomainError::InvalidInput(format!(
                "only a withdrawn property can be restored; this one is {}",
                status.as_str()
            )),
            other => DomainError::Internal(DbErr::Custom(format!(
                "the rules answered {other:?} where it does not belong"
            ))),
        }
    }
}

impl Answer {
    /// The hold named by a success, from the effects it carries.
    pub fn hold(&self, id: ReservationId) -> DomainResult<Hold> {
        let Effects {
            ended,
            started,
            extended,
            warned,
            ..
        } = &self.effects;
        ended
            .iter()
            .chain(started)
            .chain(extended)
            .chain(warned)
            .chain(&self.replayed)
            .find(|h| h.reservation.id == id)
            .cloned()
            .ok_or_else(|| {
                DomainError::Internal(DbErr::Custom(format!(
                    "the rules named reservation {id} without its row"
                )))
            })
    }

    /// The entry named by a success, from the effects it carries.
    pub fn entry(&self, id: QueueEntryId) -> DomainResult<QueueEntry> {
        self.effects
            .entries
            .iter()
            .chain(&self.entry_now)
            .find(|e| e.id == id)
            .cloned()
            .ok_or_else(|| {
                DomainError::Internal(DbErr::Custom(format!(
                    "the rules named queue entry {id} without its row"
                )))
            })
    }

    /// The result for the caller: the named queue entry on success, else the
    /// error the outcome means.
    pub fn into_entry_written(self) -> Written<QueueEntry> {
        let result = match &self.verdict {
            Verdict::Waiting { entry } | Verdict::Promoted { entry } | Verdict::Left { entry } => {
                self.entry(*entry)
            }
            _ => Err(self.verdict.into_error()),
        };
        Written {
            result,
            effects: self.effects,
        }
    }

    /// The result for the caller: the named hold on success, else the error
    /// the outcome means.
    pub fn into_written(self) -> Written<Hold> {
        let result = match &self.verdict {
            Verdict::Reserved { reservation }
            | Verdict::Ended { reservation }
            | Verdict::Extended { reservation }
            | Verdict::Expired { reservation }
            | Verdict::Warned { reservation }
            | Verdict::Replayed { reservation } => self.hold(*reservation),
            _ => Err(self.verdict.into_error()),
        };
        Written {
            result,
            effects: self.effects,
        }
    }
}

/// Calls one function of the rules, `SELECT rules.<call>` with `values`, in a
/// transaction of its own, and reads its answer: `BEGIN`, the call, `COMMIT`.
/// The commit is the client's to send: a call whose client dies before it (a
/// server killed while the call waits for a lock) writes nothing.
pub(crate) async fn ask(
    db: &DatabaseConnection,
    call: &str,
    values: impl IntoIterator<Item = Value>,
) -> DomainResult<Answer> {
    let sql = format!("SELECT rules.{call}::text AS answer");
    let txn = crate::db::begin(db).await?;
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    txn.commit().await?;
    read_answer(call, row)
}

/// How long a call sent in one round trip waits for a row lock that another
/// call holds before it gives way to [`ask`]. A reserve keeps a plot's lock
/// for a fraction of a millisecond, but on busy cores the wait for it, or for
/// the brief lock PostgreSQL takes on a row that many inserts reference at
/// once (the workspace's, through the reservation's foreign key), reaches
/// tens of milliseconds; 10 ms sent too many calls round again under load.
/// Still far less than any wait worth a client's commit.
pub const ONE_ROUND_TRIP_LOCK_WAIT: Duration = Duration::from_millis(50);

/// Calls one function of the rules in one round trip: the statement alone,
/// in autocommit, where PostgreSQL makes it a transaction of its own and
/// commits it as it ends. The same function, the same locks and the same
/// checks as [`ask`], without `BEGIN` and `COMMIT`.
///
/// In autocommit the commit is no longer the client's to send: once
/// PostgreSQL has the statement, it commits whatever becomes of the client.
/// So such a call never waits (`rules.at_once`): it waits at most
/// [`ONE_ROUND_TRIP_LOCK_WAIT`] for a row lock, and PostgreSQL refuses it if
/// it arrives more than [`IDLE_IN_TRANSACTION_TIMEOUT`] after it was sent by
/// the client's clock (stuck in a silent link while its client gave up).
/// Either way it wrote nothing, and it is sent again through [`ask`], in a
/// transaction that may wait as long as `lock_timeout` and whose commit
/// stays the client's. A free plot nobody else is touching takes one round
/// trip; a contended one takes the full transaction, as before. What is left
/// is the one case every commit has: a client that dies, or gives up at its
/// deadline, while the statement runs (milliseconds, since it cannot wait)
/// learns nothing of its outcome; a retry with the same idempotency key
/// answers it.
///
/// [`IDLE_IN_TRANSACTION_TIMEOUT`]: crate::db::IDLE_IN_TRANSACTION_TIMEOUT
pub(crate) async fn ask_at_once(
    db: &DatabaseConnection,
    call: &str,
    values: impl Fn() -> Vec<Value>,
) -> DomainResult<Answer> {
    let mut once = values();
    let n = once.len();
    let sql = format!(
        "SELECT rules.{call}::text AS answer FROM rules.at_once(${}, ${}, ${})",
        n + 1,
        n + 2,
        n + 3
    );
    // Sent now, before the wait for a pooled connection: a long wait for one
    // counts as lateness too, on the safe side (such a call goes again in a
    // transaction).
    once.push(Utc::now().into());
    once.push(secs(crate::db::IDLE_IN_TRANSACTION_TIMEOUT));
    once.push(secs(ONE_ROUND_TRIP_LOCK_WAIT));
    match db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            once,
        ))
        .await
    {
        Ok(row) => read_answer(call, row),
        Err(e) => match sqlstate(&e).as_deref() {
            Some(sqlstate::LOCK_NOT_AVAILABLE) => {
                tracing::debug!(call, "contended: sent again in a transaction");
                ask(db, call, values()).await
            }
            Some(sqlstate::ARRIVED_LATE) => {
                tracing::warn!(
                    call,
                    error = %e,
                    "PostgreSQL received a one-round-trip call late (a slow link, or its clock ahead of this host's): sent again in a transaction"
                );
                ask(db, call, values()).await
            }
            _ => Err(e.into()),
        },
    }
}

/// Calls one function of the rules the way `policy` says a reserve or a
/// join is sent (`Policy::one_round_trip`).
pub(crate) async fn ask_as(
    db: &DatabaseConnection,
    policy: &crate::Policy,
    call: &str,
    values: impl Fn() -> Vec<Value>,
) -> DomainResult<Answer> {
    if policy.one_round_trip {
        ask_at_once(db, call, values).await
    } else {
        ask(db, call, values()).await
    }
}

/// Reads the answer of `rules.<call>`.
fn read_answer(call: &str, row: Option<sea_orm::QueryResult>) -> DomainResult<Answer> {
    let row = row.ok_or_else(|| DbErr::Custom(format!("rules.{call} answered no row")))?;
    let text: String = row.try_get("", "answer")?;
    serde_json::from_str(&text).map_err(|e| {
        DomainError::Internal(DbErr::Custom(format!(
            "cannot read the answer of rules.{call}: {e}: {text}"
        )))
    })
}

pub(crate) fn secs(d: Duration) -> Value {
    d.as_secs_f64().into()
}

/// A count as the rules take it (`integer`).
pub(crate) fn count(n: u32) -> Value {
    i32::try_from(n).unwrap_or(i32::MAX).into()
}

/// Whether a caller may act at all, from its user's `active` flag and its
/// workspace's status (`None`: no such user in that workspace). The one
/// place that decides what a refused caller is told, for the server's door
/// and for `reserve` alike.
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

pub(crate) fn key_reused() -> DomainError {
    DomainError::InvalidInput(
        "this idempotency key was used for another property within the last 24 hours".into(),
    )
}
