//! What resolvers take from the request and the schema: the caller's session,
//! the request's loaders and the process's services.

use std::sync::Arc;

use async_graphql::Context;
use async_graphql::dataloader::DataLoader;
use holdfast_domain::{Actor, Caller, Policy};
use holdfast_runtime::Outbox;
use sea_orm::DatabaseConnection;
use tokio::sync::OnceCell;

use crate::auth::{self, Session, Tokens};
use crate::error::{ApiError, ApiResult};

use super::loaders::Loaders;
use super::snapshot::{Conn, Reads};

/// The process's services, shared by every request (schema data).
#[derive(Clone)]
pub struct Services {
    pub db: DatabaseConnection,
    pub policy: Policy,
    /// Where the work each write owes after its commit goes (jobs, events).
    pub outbox: Outbox,
    pub tokens: Tokens,
    /// `HOLDFAST_REQUEST_TIMEOUT`, for writes of a request that carries no
    /// deadline of its own (an operation over the WebSocket).
    pub request_timeout: std::time::Duration,
}

/// Who the request runs as. The token is checked before the query runs;
/// the user and workspace rows are loaded when a resolver first asks for
/// them (once per request), so that `reserveProperty`, which checks its
/// caller inside its own lock statement, costs no separate lookup. A query
/// that needs no caller (introspection) works without a token.
#[derive(Clone)]
pub struct RequestAuth(Arc<AuthState>);

enum AuthState {
    /// No token, or a bad one: every resolver that needs a caller fails so.
    Refused(async_graphql::Error),
    /// A valid token; its user and workspace are loaded on first use.
    Claimed {
        caller: Caller,
        db: DatabaseConnection,
        session: OnceCell<Result<Arc<Session>, async_graphql::Error>>,
    },
}

impl RequestAuth {
    pub fn refused(err: impl Into<async_graphql::Error>) -> Self {
        Self(Arc::new(AuthState::Refused(err.into())))
    }

    /// A verified token's caller, loaded lazily from `db`.
    pub fn claimed(db: DatabaseConnection, caller: Caller) -> Self {
        Self(Arc::new(AuthState::Claimed {
            caller,
            db,
            session: OnceCell::new(),
        }))
    }

    /// A caller whose session is already loaded (a subscription connection).
    pub fn loaded(db: DatabaseConnection, session: Session) -> Self {
        Self(Arc::new(AuthState::Claimed {
            caller: Caller::from(&session.actor()),
            db,
            session: OnceCell::new_with(Some(Ok(Arc::new(session)))),
        }))
    }

    /// Who the token names, not yet checked against the database.
    pub fn caller(&self) -> Result<Caller, async_graphql::Error> {
        match &*self.0 {
            AuthState::Refused(err) => Err(err.clone()),
            AuthState::Claimed { caller, .. } => Ok(*caller),
        }
    }

    /// The caller's user and workspace, loaded at most once per request.
    pub async fn session(&self) -> Result<&Session, async_graphql::Error> {
        match &*self.0 {
            AuthState::Refused(err) => Err(err.clone()),
            AuthState::Claimed {
                caller,
                db,
                session,
            } => {
                let loaded = session
                    .get_or_init(|| async {
                        auth::load_session(db, *caller)
                            .await
                            .map(Arc::new)
                            .map_err(async_graphql::Error::from)
                    })
                    .await;
                loaded.as_deref().map_err(Clone::clone)
            }
        }
    }
}

/// The request's authentication; a request that carries none (which the
/// HTTP and WebSocket handlers never send) has no credentials.
fn request_auth<'a>(ctx: &Context<'a>) -> ApiResult<&'a RequestAuth> {
    ctx.data::<RequestAuth>()
        .map_err(|_| ApiError::Unauthenticated("no credentials".into()))
}

/// The caller, or the reason there is none.
pub async fn session<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Session> {
    request_auth(ctx)?.session().await
}

/// Who the request's token names, before any lookup: for operations that
/// check their caller themselves, in their own transaction.
pub fn caller(ctx: &Context<'_>) -> async_graphql::Result<Caller> {
    request_auth(ctx)?.caller()
}

pub async fn actor(ctx: &Context<'_>) -> async_graphql::Result<Actor> {
    Ok(session(ctx).await?.actor())
}

/// Managers and admins only.
pub async fn require_manager(ctx: &Context<'_>) -> async_graphql::Result<Actor> {
    let actor = actor(ctx).await?;
    if actor.role.is_manager() {
        Ok(actor)
    } else {
        Err(ApiError::Forbidden("only managers and admins may do this".into()).into())
    }
}

pub fn loaders<'a>(ctx: &Context<'a>) -> ApiResult<&'a DataLoader<Loaders>> {
    ctx.data::<DataLoader<Loaders>>()
        .map_err(|_| ApiError::Unauthenticated("no credentials".into()))
}

/// A connection to read on: the request's snapshot for a query
/// (`snapshot.rs`), the pool otherwise.
pub async fn read_conn<'a>(ctx: &Context<'a>) -> ApiResult<Conn<'a>> {
    let reads = ctx
        .data::<Reads>()
        .map_err(|_| ApiError::Unauthenticated("no credentials".into()))?;
    reads
        .conn()
        .await
        .map_err(|e| ApiError::from(holdfast_domain::DomainError::from(e)))
}

pub fn services<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Services> {
    ctx.data::<Services>()
}

/// Parses a GraphQL `ID` as one of the domain's ids: a malformed one is
/// BAD_USER_INPUT.
pub fn parse_id<T: std::str::FromStr>(what: &str, id: &async_graphql::ID) -> ApiResult<T> {
    id.parse::<T>().map_err(|_| {
        ApiError::BadInput(format!(
            "{what} {:?} is not a valid ID (a UUID)",
            id.as_str()
        ))
    })
}
