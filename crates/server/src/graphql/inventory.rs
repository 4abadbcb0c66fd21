//! The inventory's mutations (a plot's code and price, withdrawing and
//! restoring plots, spreadsheet imports) and the `Decimal` scalar of
//! prices. Roles and rules are the domain's (`holdfast_domain::inventory`);
//! this layer parses, commits within the request's deadline, and hands each
//! write's effects to the outbox after the commit.

use async_graphql::{
    Context, ID, InputValueError, InputValueResult, MaybeUndefined, Object, Result, Scalar,
    ScalarType, SimpleObject, Value,
};
use holdfast_domain::inventory::{self, Price, PropertyUpdate};
use holdfast_domain::{ProjectId, PropertyId, WorkspaceId, Written, reads};

use super::context::{Services, actor, parse_id, services};
use super::types::{PropertyNode, present};
use crate::deadline::commit_in_time;
use crate::error::{ApiError, ApiResult};

/// A price as GraphQL carries it: a string of digits with at most two
/// decimals. JSON numbers with a fraction are refused, since they reach the
/// server as floats; whole numbers are exact and accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal(pub Price);

/// A decimal number as a string, for example "12500000.00".
#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        let text = match &value {
            Value::String(text) => text.clone(),
            Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            Value::Number(n) => {
                return Err(InputValueError::custom(format!(
                    "price {n} must be a string, such as \"{n}\": a number with a fraction is not exact"
                )));
            }
            other => {
                return Err(InputValueError::custom(format!(
                    "price {other} is not a decimal: write it as a string, such as \"12500000.00\""
                )));
            }
        };
        Price::parse(&text)
            .map(Decimal)
            .map_err(|e| InputValueError::custom(format!("price {e}")))
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.as_str().to_owned())
    }
}

impl Decimal {
    /// A price as PostgreSQL prints it.
    pub fn stored(text: Option<&str>) -> ApiResult<Option<Decimal>> {
        text.map(|t| {
            Price::parse(t)
                .map(Decimal)
                .map_err(|e| ApiError::Internal(format!("a stored price does not read: {e}")))
        })
        .transpose()
    }
}

/// What an import did.
#[derive(SimpleObject)]
pub struct ImportResult {
    /// Plots added.
    pub created: i32,
    /// Existing plots whose price the import changed.
    pub updated: i32,
}

fn count(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The mutations of a workspace's inventory; the schema merges it with the
/// others.
#[derive(Default)]
pub struct InventoryMutation;

#[Object]
impl InventoryMutation {
    /// Managers and admins only: a plot's code or price. Codes are unique per project without regard to case; a null price takes the price away. A hold keeps the price its plot had when it began.
    async fn update_property(
        &self,
        ctx: &Context<'_>,
        property_id: ID,
        code: Option<String>,
        price: MaybeUndefined<Decimal>,
    ) -> Result<PropertyNode> {
        let actor = actor(ctx).await?;
        let id: PropertyId = parse_id("property id", &property_id)?;
        let update = PropertyUpdate {
            code,
            price: match price {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(Decimal(price)) => Some(Some(price)),
            },
        };
        let svc = services(ctx)?;
        let written = commit_in_time(
            ctx,
            inventory::update_property(&svc.db, &actor, id, &update),
        )
        .await;
        let property = written.result.map_err(ApiError::from)?;
        tracing::info!(property.id = %property.id, "property updated");
        Ok(PropertyNode(property))
    }

    /// Managers and admins only: take a plot off the market (WITHDRAWN: it cannot be reserved or queued for). A held plot must be released first (PROPERTY_UNAVAILABLE, with its status and end). Withdrawing twice is harmless.
    async fn withdraw_property(&self, ctx: &Context<'_>, property_id: ID) -> Result<PropertyNode> {
        let actor = actor(ctx).await?;
        let id: PropertyId = parse_id("property id", &property_id)?;
        let svc = services(ctx)?;
        let written =
            commit_in_time(ctx, inventory::withdraw(&svc.db, &svc.policy, &actor, id)).await;
        changed(svc, written, actor.workspace_id, "withdrawn").await
    }

    /// Managers and admins only: put a withdrawn plot back on the market as AVAILABLE. Restoring an available plot is harmless.
    async fn restore_property(&self, ctx: &Context<'_>, property_id: ID) -> Result<PropertyNode> {
        let actor = actor(ctx).await?;
        let id: PropertyId = parse_id("property id", &property_id)?;
        let svc = services(ctx)?;
        let written = commit_in_time(ctx, inventory::restore(&svc.db, &actor, id)).await;
        changed(svc, written, actor.workspace_id, "restored").await
    }

    /// Managers and admins only: add or update, by code, up to 10,000 plots from CSV text with a header row (columns: code, and optionally price), all or none. A code the project has (compared without regard to case) gets the row's price; any other is added. Errors name the line and the column.
    async fn import_properties(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        csv: String,
    ) -> Result<ImportResult> {
        let actor = actor(ctx).await?;
        let project: ProjectId = parse_id("project id", &project_id)?;
        let svc = services(ctx)?;
        let written = commit_in_time(
            ctx,
            inventory::import_properties(&svc.db, &actor, project, &csv),
        )
        .await;
        let imported = written.result.map_err(ApiError::from)?;
        Ok(ImportResult {
            created: count(imported.created),
            updated: count(imported.updated),
        })
    }
}

/// A withdrawal or a restore: the work it owes after its commit (the
/// property's change for live subscribers, and whatever a hold it found
/// lapsed owes), a log line, and the property as it reads now.
async fn changed(
    svc: &Services,
    written: Written<PropertyId>,
    workspace: WorkspaceId,
    what: &str,
) -> Result<PropertyNode> {
    svc.outbox.after_commit(&written.effects).await;
    let id = written.result.map_err(ApiError::from)?;
    tracing::info!(property.id = %id, "{what}");
    let row = reads::properties_by_ids(&svc.db, workspace, [id])
        .await
        .map_err(ApiError::from)?
        .pop();
    Ok(PropertyNode(present("property", row)?))
}
