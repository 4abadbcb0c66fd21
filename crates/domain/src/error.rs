//! The domain's one error type. Every failure of a domain operation is one of
//! these; the server maps them to GraphQL codes in one place.

use chrono::{DateTime, Utc};
use sea_orm::{DbErr, RuntimeErr};

use crate::entities::{PropertyStatus, ReservationStatus};

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// No such object in the caller's workspace.
    #[error("{0} not found")]
    NotFound(&'static str),

    /// The caller named by a request is not (or no longer) a user who may
    /// act: gone, or deactivated.
    #[error("{0}")]
    Unauthenticated(&'static str),

    /// The caller's role (or ownership) does not allow this.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),

    /// Bad input: a name too long, a duplicate code, too many items.
    #[error("{0}")]
    InvalidInput(String),

    /// The property is held, sold or withdrawn, or its project is archived
    /// (`project_archived`; `status` is then the plot's own, as it reads).
    #[error("{}", unavailable_message(*status, *reserved_until, *project_archived))]
    PropertyUnavailable {
        status: PropertyStatus,
        reserved_until: Option<DateTime<Utc>>,
        project_archived: bool,
    },

    /// Release, extend or convert of a reservation that has ended.
    #[error("the reservation is no longer active (it is {})", status.as_str())]
    ReservationNotActive { status: ReservationStatus },

    /// The agent holds as many reservations as allowed.
    #[error("the agent already holds {limit} active reservations, the most allowed")]
    ReservationLimitReached { limit: u32 },

    /// The reservation was extended as often as allowed.
    #[error("the reservation was already extended {limit} times, the most allowed")]
    ExtensionLimitReached { limit: u32 },

    /// `joinQueue` by an agent who holds the property or waits for it already.
    #[error("you already hold this property or wait in its line")]
    AlreadyQueued,

    /// The line for the property is as long as allowed (0: the line is off).
    #[error("{}", queue_full_message(*limit))]
    QueueFull { limit: u32 },

    /// A lock could not be had in time; safe to retry.
    #[error("the property is busy, try again")]
    Busy,

    /// PostgreSQL cannot be reached.
    #[error("the database is unavailable")]
    Unavailable(#[source] DbErr),

    /// Anything else: logged with its cause, never shown to a client.
    #[error("internal error: {0}")]
    Internal(#[source] DbErr),
}

fn queue_full_message(limit: u32) -> String {
    if limit == 0 {
        "the line is off in this deployment (HOLDFAST_MAX_QUEUE_LENGTH=0)".to_owned()
    } else {
        format!("{limit} entries wait for this property already, the most allowed")
    }
}

fn unavailable_message(
    status: PropertyStatus,
    until: Option<DateTime<Utc>>,
    project_archived: bool,
) -> String {
    if project_archived {
        return format!(
            "the property's project is archived: its plots cannot be reserved (the property is {})",
            status.as_str()
        );
    }
    match (status, until) {
        (PropertyStatus::Reserved, Some(until)) => {
            format!("the property is RESERVED until {}", until.to_rfc3339())
        }
        (status, _) => format!("the property is {}", status.as_str()),
    }
}

/// PostgreSQL error codes the domain tells apart.
pub(crate) mod sqlstate {
    pub const LOCK_NOT_AVAILABLE: &str = "55P03";
    /// Raised by `rules.at_once` for a one-round-trip call that reached
    /// PostgreSQL too long after it was sent (`rules::ask_at_once`).
    pub const ARRIVED_LATE: &str = "HF001";
    pub const DEADLOCK_DETECTED: &str = "40P01";
    pub const SERIALIZATION_FAILURE: &str = "40001";
    pub const QUERY_CANCELED: &str = "57014";
    /// Class 08 (connection exception), 57P01..57P03 (shutdown, cannot
    /// connect now), and PostgreSQL ending a session that sat idle too long
    /// (25P03 in a transaction, 57P05 outside one): a lost connection too.
    pub fn is_connection(code: &str) -> bool {
        code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "57P05" | "25P03")
    }
}

/// The SQLSTATE of a database error, if the error came from PostgreSQL.
pub fn sqlstate(err: &DbErr) -> Option<String> {
    let runtime = match err {
        DbErr::Exec(e) | DbErr::Query(e) | DbErr::Conn(e) => e,
        _ => return None,
    };
    match runtime {
        RuntimeErr::SqlxError(e) => e
            .as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned()),
        _ => None,
    }
}

/// The name of the constraint a database error broke, if any.
pub fn constraint(err: &DbErr) -> Option<String> {
    let runtime = match err {
        DbErr::Exec(e) | DbErr::Query(e) => e,
        _ => return None,
    };
    match runtime {
        RuntimeErr::SqlxError(e) => e
            .as_database_error()
            .and_then(|d| d.constraint())
            .map(str::to_owned),
        _ => None,
    }
}

/// Maps a database error that broke the constraint (or unique index) named
/// `name` to the domain error `map` gives; any other error maps as usual. The
/// schema's safety nets are named, so each refusal they stand for is mapped
/// by name, in one place per constraint.
pub fn on_constraint(err: DbErr, name: &str, map: impl FnOnce() -> DomainError) -> DomainError {
    if constraint(&err).as_deref() == Some(name) {
        map()
    } else {
        err.into()
    }
}

fn is_connection_failure(err: &DbErr) -> bool {
    if let Some(code) = sqlstate(err) {
        return sqlstate::is_connection(&code);
    }
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => matches!(
            e.as_ref(),
            sea_orm::sqlx::Error::Io(_)
                | sea_orm::sqlx::Error::Tls(_)
                | sea_orm::sqlx::Error::PoolTimedOut
                | sea_orm::sqlx::Error::PoolClosed
                | sea_orm::sqlx::Error::WorkerCrashed
        ),
        _ => false,
    }
}

impl From<DbErr> for DomainError {
    /// Lock timeouts and deadlocks are `Busy` (retry), lost connections are
    /// `Unavailable`; everything else is internal.
    fn from(err: DbErr) -> Self {
        if let Some(
            sqlstate::LOCK_NOT_AVAILABLE
            | sqlstate::DEADLOCK_DETECTED
            | sqlstate::SERIALIZATION_FAILURE
            | sqlstate::QUERY_CANCELED,
        ) = sqlstate(&err).as_deref()
        {
            return DomainError::Busy;
        }
        if is_connection_failure(&err) {
            DomainError::Unavailable(err)
        } else {
            DomainError::Internal(err)
        }
    }
}

impl DomainError {
    /// Whether trying the same operation again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, DomainError::Busy | DomainError::Unavailable(_))
    }
}

pub type DomainResult<T> = Result<T, DomainError>;
