//! The schema's subscription: live property status changes of the caller's
//! workspace, fed by the process's [`Hub`].

use std::sync::Arc;

use async_graphql::{Context, ID, Result, Subscription as SubscriptionObject};
use futures::Stream;
use holdfast_domain::reads;
use holdfast_domain::{DomainError, ProjectId};
use tokio::sync::broadcast::{self, error::RecvError};

use super::context::{parse_id, services, session};
use super::types::PropertyChange;
use crate::error::{ApiError, Code, coded};
use crate::live::ws::{ConnectionControl, close};
use crate::live::{Delivery, Hub};
use crate::metrics;

pub struct Subscription;

#[SubscriptionObject]
impl Subscription {
    /// Every status change of a property in the caller's workspace, of one project when projectId is given.
    async fn property_changed(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<PropertyChange>> + use<>> {
        let session = session(ctx).await?;
        let workspace = session.workspace.id;
        let project = match &project_id {
            Some(id) => {
                let id: ProjectId = parse_id("project id", id)?;
                // Another workspace's project is NOT_FOUND, like everywhere.
                let found = reads::projects_by_ids(&services(ctx)?.db, workspace, [id])
                    .await
                    .map_err(ApiError::from)?;
                if found.is_empty() {
                    return Err(ApiError::from(DomainError::NotFound("project")).into());
                }
                Some(id)
            }
            None => None,
        };
        let hub = ctx.data::<Hub>()?;
        let receiver = hub.subscribe(workspace).map_err(|_| {
            coded(
                Code::ServiceUnavailable,
                "live updates are unavailable (Redis cannot be reached); try again later",
            )
        })?;
        let state = Feed {
            receiver,
            project,
            control: ctx.data_opt::<ConnectionControl>().cloned(),
            _counted: metrics::Subscriber::open(),
            done: false,
        };
        Ok(futures::stream::unfold(state, Feed::next))
    }
}

/// One subscriber's feed; counted in the subscribers gauge while it lives.
struct Feed {
    receiver: broadcast::Receiver<Arc<Delivery>>,
    project: Option<ProjectId>,
    control: Option<ConnectionControl>,
    _counted: metrics::Subscriber,
    done: bool,
}

impl Feed {
    async fn next(mut self) -> Option<(Result<PropertyChange>, Self)> {
        if self.done {
            return None;
        }
        loop {
            match self.receiver.recv().await {
                Ok(delivery) => {
                    if self
                        .project
                        .is_some_and(|p| p != delivery.change.project_id)
                    {
                        continue;
                    }
                    let change = PropertyChange {
                        property: delivery.property.clone(),
                        previous_status: delivery.change.previous_status.into(),
                        status: delivery.change.status.into(),
                        at: delivery.change.at,
                    };
                    return Some((Ok(change), self));
                }
                Err(RecvError::Lagged(missed)) => {
                    metrics::subscriber_dropped("lagged");
                    tracing::warn!(
                        missed,
                        "live updates: a subscriber fell behind and was dropped"
                    );
                    let message = format!(
                        "this subscriber fell behind by {missed} changes and was dropped; \
                         re-read and subscribe again"
                    );
                    if let Some(control) = &self.control {
                        control.close(close::TOO_SLOW, "subscriber too slow");
                    }
                    self.done = true;
                    return Some((Err(coded(Code::SubscriberTooSlow, message)), self));
                }
                Err(RecvError::Closed) => {
                    self.done = true;
                    let err = coded(
                        Code::ServiceUnavailable,
                        "live updates were interrupted (the Redis subscription was lost); \
                         re-read and subscribe again",
                    );
                    return Some((Err(err), self));
                }
            }
        }
    }
}
