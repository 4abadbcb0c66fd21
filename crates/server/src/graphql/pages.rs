//! The page reads behind every list of the schema: a page size checked, a
//! cursor decoded, the domain's keyset read, and the page with its cursors.

use async_graphql::{Context, Result};
use chrono::{DateTime, Utc};
use holdfast_domain::entities::{project, property, reservation};
use holdfast_domain::reads::{self, PropertyFilter, ReservationFilter};
use holdfast_domain::{ProjectId, PropertyId, ReservationId};

use super::context::{services, session};
use super::paging::{self, Page};
use crate::error::ApiError;

/// One page of properties, in code order.
pub async fn properties(
    ctx: &Context<'_>,
    filter: PropertyFilter,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Page<property::Model>> {
    let first = paging::page_size(first)?;
    let session = session(ctx).await?;
    let after_key = match &after {
        Some(cursor) => {
            let parts = paging::decode_cursor("property", cursor, 2)?;
            let id: PropertyId = parts[1]
                .parse()
                .map_err(|_| ApiError::BadInput("malformed cursor".into()))?;
            Some((parts[0].clone(), id))
        }
        None => None,
    };
    let rows = reads::properties_page(
        &services(ctx)?.db,
        session.workspace.id,
        &filter,
        after_key,
        first + 1,
    )
    .await
    .map_err(ApiError::from)?;
    Ok(Page::new(
        rows,
        first,
        after.is_some(),
        |p| paging::encode_cursor("property", &[&p.code, &p.id.to_string()]),
        |p| p,
    ))
}

/// One page of reservations, newest first.
pub async fn reservations(
    ctx: &Context<'_>,
    filter: ReservationFilter,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Page<reservation::Model>> {
    let first = paging::page_size(first)?;
    let session = session(ctx).await?;
    let after_key = match &after {
        Some(cursor) => {
            let parts = paging::decode_cursor("reservation", cursor, 2)?;
            let bad = || ApiError::BadInput("malformed cursor".into());
            let at = DateTime::parse_from_rfc3339(&parts[0])
                .map_err(|_| bad())?
                .with_timezone(&Utc);
            let id: ReservationId = parts[1].parse().map_err(|_| bad())?;
            Some((at, id))
        }
        None => None,
    };
    let rows = reads::reservations_page(
        &services(ctx)?.db,
        session.workspace.id,
        &filter,
        after_key,
        first + 1,
    )
    .await
    .map_err(ApiError::from)?;
    Ok(Page::new(
        rows,
        first,
        after.is_some(),
        |r| {
            let at = r
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
            paging::encode_cursor("reservation", &[&at, &r.id.to_string()])
        },
        |r| r,
    ))
}

/// One page of projects, in creation order.
pub async fn projects(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Page<project::Model>> {
    let first = paging::page_size(first)?;
    let session = session(ctx).await?;
    let after_key: Option<ProjectId> = match &after {
        Some(cursor) => {
            let parts = paging::decode_cursor("project", cursor, 1)?;
            Some(
                parts[0]
                    .parse()
                    .map_err(|_| ApiError::BadInput("malformed cursor".into()))?,
            )
        }
        None => None,
    };
    let rows = reads::projects_page(
        &services(ctx)?.db,
        session.workspace.id,
        after_key,
        first + 1,
    )
    .await
    .map_err(ApiError::from)?;
    Ok(Page::new(
        rows,
        first,
        after.is_some(),
        |p| paging::encode_cursor("project", &[&p.id.to_string()]),
        |p| p,
    ))
}
