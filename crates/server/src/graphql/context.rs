//! What resolvers take from the request and the schema: the caller's session,
//! the request's loaders and the process's services.

use std::sync::Arc;

use async_graphql::Context;
use async_graphql::dataloader::DataLoader;
use holdfast_domain::{Actor, Policy};
use holdfast_queue::{EventPublisher, ReleaseQueue};
use sea_orm::DatabaseConnection;

use crate::auth::{Session, Tokens};
use crate::error::{ApiError, ApiResult};

use super::loaders::Loaders;

/// The process's services, shared by every request (schema data).
#[derive(Clone)]
pub struct Services {
    pub db: DatabaseConnection,
    pub policy: Policy,
    pub queue: ReleaseQueue,
    /// Where committed property changes are published for live subscribers.
    pub events: EventPublisher,
    pub tokens: Tokens,
}

/// Who the request runs as, decided before the query runs. Resolvers read
/// it, so a query that needs no caller (introspection) works without a token.
#[derive(Clone)]
pub struct RequestAuth(pub Result<Arc<Session>, async_graphql::Error>);

/// The caller, or the reason there is none.
pub fn session<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Session> {
    match ctx.data::<RequestAuth>() {
        Ok(RequestAuth(Ok(session))) => Ok(session),
        Ok(RequestAuth(Err(err))) => Err(err.clone()),
        Err(_) => Err(ApiError::Unauthenticated("no credentials".into()).into()),
    }
}

pub fn actor(ctx: &Context<'_>) -> async_graphql::Result<Actor> {
    Ok(session(ctx)?.actor())
}

/// Managers and admins only.
pub fn require_manager(ctx: &Context<'_>) -> async_graphql::Result<Actor> {
    let actor = actor(ctx)?;
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
