//! The page reads behind every list of the schema: a page size checked, a
//! cursor decoded, the domain's keyset read, and the page with its cursors.

use async_graphql::{Context, Result};
use holdfast_domain::entities::{project, property, reservation};
use holdfast_domain::reads::{
    self, PropertyFilter, QueueEntryFilter, QueueEntryNow, ReservationFilter,
};
use holdfast_domain::{ProjectId, PropertyId, QueueEntryId, ReservationId};

use super::context::{read_conn, session};
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
        &read_conn(ctx).await?,
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
    let after_key = after
        .as_deref()
        .map(|c| paging::decode_time_cursor::<ReservationId>("reservation", c))
        .transpose()?;
    let rows = reads::reservations_page(
        &read_conn(ctx).await?,
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
        |r| paging::encode_time_cursor("reservation", r.created_at, r.id),
        |r| r,
    ))
}

/// One page of queue entries, newest first.
pub async fn queue_entries(
    ctx: &Context<'_>,
    filter: QueueEntryFilter,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Page<QueueEntryNow>> {
    let first = paging::page_size(first)?;
    let session = session(ctx).await?;
    let after_key = after
        .as_deref()
        .map(|c| paging::decode_time_cursor::<QueueEntryId>("queue_entry", c))
        .transpose()?;
    let rows = reads::queue_entries_page(
        &read_conn(ctx).await?,
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
        |e| paging::encode_time_cursor("queue_entry", e.entry.created_at, e.entry.id),
        |e| e,
    ))
}

/// One page of a property's line, first in line first.
pub async fn line(
    ctx: &Context<'_>,
    property: PropertyId,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Page<QueueEntryNow>> {
    let first = paging::page_size(first)?;
    let session = session(ctx).await?;
    let after_key = after
        .as_deref()
        .map(|c| paging::decode_time_cursor::<QueueEntryId>("line", c))
        .transpose()?;
    let rows = reads::line_page(
        &read_conn(ctx).await?,
        session.workspace.id,
        property,
        after_key,
        first + 1,
    )
    .await
    .map_err(ApiError::from)?;
    Ok(Page::new(
        rows,
        first,
        after.is_some(),
        |e| paging::encode_time_cursor("line", e.entry.created_at, e.entry.id),
        |e| e,
    ))
}

/// One page of projects, in creation order; archived ones only when
/// `include_archived`.
pub async fn projects(
    ctx: &Context<'_>,
    include_archived: bool,
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
        &read_conn(ctx).await?,
        session.workspace.id,
        include_archived,
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
