//! The one place where failures become GraphQL errors: every `DomainError`,
//! auth failure and bad input gets its `extensions.code` (docs/API.md) and
//! `extensions.status`. Internal causes are logged here and never sent.

use std::sync::Arc;

use async_graphql::{ErrorExtensionValues, Value};
use holdfast_domain::DomainError;

/// A failure of a GraphQL resolver. It deliberately does not implement
/// `Display`: async-graphql turns anything `Display` into an error without a
/// code, so only this type's own conversion can reach the client.
#[derive(Debug)]
pub enum ApiError {
    /// No token, or a bad one, or the user is gone or deactivated.
    Unauthenticated(String),
    /// The caller may not do this (the domain decides most of these).
    Forbidden(String),
    /// A malformed id or cursor, a page too large.
    BadInput(String),
    Domain(DomainError),
    /// A failure outside the domain (signing a token): logged, never shown.
    Internal(String),
    /// A domain error shared by every resolver that waited on one batch load.
    Shared(Arc<DomainError>),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        ApiError::Domain(err)
    }
}

impl From<Arc<DomainError>> for ApiError {
    fn from(err: Arc<DomainError>) -> Self {
        ApiError::Shared(err)
    }
}

/// The error codes clients see (docs/API.md lists them), with the HTTP
/// status a REST API would use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unauthenticated,
    Forbidden,
    NotFound,
    BadUserInput,
    PropertyUnavailable,
    ReservationNotActive,
    ReservationLimitReached,
    ExtensionLimitReached,
    AlreadyQueued,
    QueueFull,
    Busy,
    ServiceUnavailable,
    /// A live subscriber fell too far behind the changes it was sent.
    SubscriberTooSlow,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Forbidden => "FORBIDDEN",
            Code::NotFound => "NOT_FOUND",
            Code::BadUserInput => "BAD_USER_INPUT",
            Code::PropertyUnavailable => "PROPERTY_UNAVAILABLE",
            Code::ReservationNotActive => "RESERVATION_NOT_ACTIVE",
            Code::ReservationLimitReached => "RESERVATION_LIMIT_REACHED",
            Code::ExtensionLimitReached => "EXTENSION_LIMIT_REACHED",
            Code::AlreadyQueued => "ALREADY_QUEUED",
            Code::QueueFull => "QUEUE_FULL",
            Code::Busy => "BUSY",
            Code::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Code::SubscriberTooSlow => "SUBSCRIBER_TOO_SLOW",
            Code::Internal => "INTERNAL",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Code::Unauthenticated => 401,
            Code::Forbidden => 403,
            Code::NotFound => 404,
            Code::BadUserInput => 400,
            Code::PropertyUnavailable
            | Code::ReservationNotActive
            | Code::ReservationLimitReached
            | Code::ExtensionLimitReached
            | Code::AlreadyQueued
            | Code::QueueFull => 409,
            Code::Busy | Code::ServiceUnavailable => 503,
            Code::SubscriberTooSlow => 429,
            Code::Internal => 500,
        }
    }
}

/// The message clients see for an internal error: the cause is in the log.
pub const INTERNAL_MESSAGE: &str = "internal error";

/// A GraphQL error with the code and status set.
pub fn coded(code: Code, message: impl Into<String>) -> async_graphql::Error {
    let mut err = async_graphql::Error::new(message);
    let ext = err
        .extensions
        .get_or_insert_with(ErrorExtensionValues::default);
    ext.set("code", code.as_str());
    ext.set("status", i32::from(code.status()));
    err
}

/// The code a domain error maps to.
pub fn domain_code(err: &DomainError) -> Code {
    match err {
        DomainError::NotFound(_) => Code::NotFound,
        DomainError::Unauthenticated(_) => Code::Unauthenticated,
        DomainError::Forbidden(_) => Code::Forbidden,
        DomainError::InvalidInput(_) => Code::BadUserInput,
        DomainError::PropertyUnavailable { .. } => Code::PropertyUnavailable,
        DomainError::ReservationNotActive { .. } => Code::ReservationNotActive,
        DomainError::ReservationLimitReached { .. } => Code::ReservationLimitReached,
        DomainError::ExtensionLimitReached { .. } => Code::ExtensionLimitReached,
        DomainError::AlreadyQueued => Code::AlreadyQueued,
        DomainError::QueueFull { .. } => Code::QueueFull,
        DomainError::Busy => Code::Busy,
        DomainError::Unavailable(_) => Code::ServiceUnavailable,
        DomainError::Internal(_) => Code::Internal,
    }
}

fn domain_error(err: &DomainError) -> async_graphql::Error {
    let code = domain_code(err);
    match err {
        DomainError::Internal(cause) => {
            tracing::error!(error = %cause, error.debug = ?cause, "internal error");
            coded(code, INTERNAL_MESSAGE)
        }
        DomainError::Unavailable(cause) => {
            tracing::warn!(error = %cause, "PostgreSQL is unavailable");
            coded(code, "the database is unavailable, try again later")
        }
        DomainError::PropertyUnavailable {
            status,
            reserved_until,
            project_archived,
        } => {
            let mut gql = coded(code, err.to_string());
            let ext = gql
                .extensions
                .get_or_insert_with(ErrorExtensionValues::default);
            ext.set("propertyStatus", status.as_str());
            ext.set(
                "reservedUntil",
                reserved_until.map_or(Value::Null, |t| Value::from(t.to_rfc3339())),
            );
            if *project_archived {
                ext.set("projectArchived", true);
            }
            gql
        }
        DomainError::QueueFull { limit }
        | DomainError::ReservationLimitReached { limit }
        | DomainError::ExtensionLimitReached { limit } => {
            // The limit, so that a client can say it without parsing text.
            let mut gql = coded(code, err.to_string());
            gql.extensions
                .get_or_insert_with(ErrorExtensionValues::default)
                .set("limit", *limit);
            gql
        }
        other => coded(code, other.to_string()),
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::Unauthenticated(m) => coded(Code::Unauthenticated, m),
            ApiError::Forbidden(m) => coded(Code::Forbidden, m),
            ApiError::BadInput(m) => coded(Code::BadUserInput, m),
            ApiError::Domain(e) => domain_error(&e),
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                coded(Code::Internal, INTERNAL_MESSAGE)
            }
            ApiError::Shared(e) => domain_error(&e),
        }
    }
}

/// Gives errors that escaped without a code one: a query that does not
/// parse, validate or fit the limits is the client's (BAD_USER_INPUT); an
/// uncoded error while resolving is a bug, so INTERNAL, logged, no detail.
pub fn ensure_coded(err: &mut async_graphql::ServerError) {
    let has_code = err
        .extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some());
    if has_code {
        return;
    }
    let client_fault = err.path.is_empty()
        || err.message.starts_with("Failed to parse")
        || err.message.starts_with("Invalid value");
    let code = if client_fault {
        Code::BadUserInput
    } else {
        tracing::error!(error = %err.message, path = ?err.path, "uncoded resolver error");
        err.message = INTERNAL_MESSAGE.to_owned();
        Code::Internal
    };
    let ext = err
        .extensions
        .get_or_insert_with(ErrorExtensionValues::default);
    ext.set("code", code.as_str());
    ext.set("status", i32::from(code.status()));
}
