//! Bearer tokens (HS256, algorithm pinned, expiry checked) and the session a
//! request runs as: the token names the user and workspace, and every request
//! loads both, so deactivations and suspensions take effect at once.

use std::time::Duration;

use holdfast_domain::entities::{WorkspaceStatus, user, workspace};
use holdfast_domain::{Actor, DomainResult, UserId, WorkspaceId};
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

/// Checks the token and loads its user and workspace.
pub async fn authenticate(
    db: &DatabaseConnection,
    tokens: &Tokens,
    token: Option<&str>,
) -> Result<Session, ApiError> {
    let token = token.ok_or_else(|| {
        ApiError::Unauthenticated(
            "a bearer token is required: send `Authorization: Bearer <token>`".to_owned(),
        )
    })?;
    let (user_id, workspace_id) = tokens.verify(token)?;
    let (user, workspace) = load_user_and_workspace(db, workspace_id, user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthenticated("the token's user no longer exists".to_owned()))?;
    if !user.active {
        return Err(ApiError::Unauthenticated(
            "this user has been deactivated".to_owned(),
        ));
    }
    if workspace.status == WorkspaceStatus::Suspended {
        return Err(ApiError::Forbidden(
            "this workspace is suspended".to_owned(),
        ));
    }
    Ok(Session { user, workspace })
}

/// The user and their workspace in one statement: this runs before every
/// request, so it is one round trip, not two.
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
