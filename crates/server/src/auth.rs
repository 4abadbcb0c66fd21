//! Bearer tokens (HS256, algorithm pinned, expiry checked) and the session a
//! request runs as: the token names the user and workspace, and every request
//! that acts checks both in the database (a resolver loads them, or
//! `reserveProperty` checks them in its lock statement), so deactivations
//! and suspensions take effect at once.

use std::time::Duration;

use holdfast_domain::entities::{user, workspace};
use holdfast_domain::{Actor, Caller, DomainError, DomainResult, UserId, WorkspaceId, rules};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, JoinType, QueryFilter, QuerySelect};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// What a token says.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user.
    sub: String,
    /// The user's workspace: lets the lookup filter by workspace like every
    /// other read does.
    ws: String,
    iat: u64,
    exp: u64,
}

/// Mints and checks bearer tokens with one secret.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens { .. }")
    }
}

impl Tokens {
    pub fn new(secret: &[u8]) -> Self {
        // Only HS256: a token naming another algorithm (or `none`) is refused
        // before its signature is even looked at.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// A token for `user` of `workspace`, valid for `ttl`.
    pub fn mint(
        &self,
        user: UserId,
        workspace: WorkspaceId,
        ttl: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user.to_string(),
            ws: workspace.to_string(),
            iat: now,
            exp: now.saturating_add(ttl.as_secs()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The user and workspace a valid token names.
    pub fn verify(&self, token: &str) -> Result<(UserId, WorkspaceId), ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                let why = match e.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::InvalidSignature => "the token's signature is not valid",
                    ErrorKind::InvalidAlgorithm => "the token is not signed with HS256",
                    _ => "the token is malformed",
                };
                ApiError::Unauthenticated(why.to_owned())
            })?;
        let bad = || ApiError::Unauthenticated("the token is malformed".to_owned());
        let user = data.claims.sub.parse().map_err(|_| bad())?;
        let workspace = data.claims.ws.parse().map_err(|_| bad())?;
        Ok((user, workspace))
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: user::Model,
    pub workspace: workspace::Model,
}

impl Session {
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.user.id,
            workspace_id: self.workspace.id,
            role: self.user.role,
        }
    }
}

/// The token of an `Authorization: Bearer ...` header value, if any.
pub fn bearer(header: Option<&str>) -> Result<Option<&str>, ApiError> {
    let Some(value) = header else {
        return Ok(None);
    };
    let mut parts = value.trim().splitn(2, ' ');
    match (parts.next(), parts.next()) {
        (Some(scheme), Some(token)) if scheme.eq_ignore_ascii_case("bearer") => {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::Unauthenticated(
            "the Authorization header must be `Bearer <token>`".to_owned(),
        )),
    }
}

/// Checks a bearer token: the caller it names (not yet looked up).
pub fn verify_bearer(tokens: &Tokens, token: Option<&str>) -> Result<Caller, ApiError> {
    let token = token.ok_or_else(|| {
        ApiError::Unauthenticated(
            "a bearer token is required: send `Authorization: Bearer <token>`".to_owned(),
        )
    })?;
    let (user_id, workspace_id) = tokens.verify(token)?;
    Ok(Caller {
        user_id,
        workspace_id,
    })
}

/// Checks the token and loads its user and workspace.
pub async fn authenticate(
    db: &DatabaseConnection,
    tokens: &Tokens,
    token: Option<&str>,
) -> Result<Session, ApiError> {
    load_session(db, verify_bearer(tokens, token)?).await
}

/// Loads the caller's user and workspace, refusing a user who is gone or
/// deactivated (UNAUTHENTICATED) and a suspended workspace (FORBIDDEN).
pub async fn load_session(db: &DatabaseConnection, caller: Caller) -> Result<Session, ApiError> {
    let found = load_user_and_workspace(db, caller.workspace_id, caller.user_id).await?;
    rules::caller_standing(found.as_ref().map(|(u, w)| (u.active, w.status))).map_err(refusal)?;
    // Standing was refused above when nothing was found.
    found
        .map(|(user, workspace)| Session { user, workspace })
        .ok_or_else(|| ApiError::Internal("a caller in good standing without a row".into()))
}

/// A caller refused by the domain (`caller_standing`) as the door refuses
/// one: the same codes and messages wherever the check ran, and the close
/// codes of a subscription connection follow from them.
pub fn refusal(err: DomainError) -> ApiError {
    match err {
        DomainError::Unauthenticated(why) => ApiError::Unauthenticated(why.to_owned()),
        DomainError::Forbidden(why) => ApiError::Forbidden(why.to_owned()),
        other => ApiError::Domain(other),
    }
}

/// The user and their workspace in one statement: one round trip, not two.
async fn load_user_and_workspace(
    db: &DatabaseConnection,
    workspace_id: WorkspaceId,
    user_id: UserId,
) -> DomainResult<Option<(user::Model, workspace::Model)>> {
    let of_workspace = user::Entity::belongs_to(workspace::Entity)
        .from(user::Column::WorkspaceId)
        .to(workspace::Column::Id)
        .into();
    let row = user::Entity::find_by_id(user_id)
        .filter(user::Column::WorkspaceId.eq(workspace_id))
        .join(JoinType::InnerJoin, of_workspace)
        .select_also(workspace::Entity)
        .one(db)
        .await?;
    Ok(row.and_then(|(user, workspace)| Some((user, workspace?))))
}
