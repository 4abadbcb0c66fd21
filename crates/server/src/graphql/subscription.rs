//! The schema's subscription: live property status changes of the caller's
//! workspace, fed by the process's [`Hub`].

use std::sync::Arc;

use async_graphql::{Context, ID, Result, Subscription as SubscriptionObject};
use futures::Stream;
use holdfast_domain::reads;
use holdfast_domain::{DomainError, ProjectId};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;

use super::context::{parse_id, services, session};
use super::types::PropertyChange;
use crate::error::{ApiError, Code, coded};
use crate::live::{Delivery, Hub};
use crate::metrics;

/// Why a subscription ended the connection it runs on; what that means on
/// the wire is the transport's to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedEnded {
    /// The subscriber fell more than its buffer behind the changes: its
    /// connection is what is slow, so it ends.
    FellBehind,
}

/// Connection data a transport gives its subscriptions, to hear when one of
/// them ended the connection.
#[derive(Clone, Default)]
pub struct FeedEnds(Arc<watch::Sender<Option<FeedEnded>>>);

impl FeedEnds {
    /// Ends the connection for `why` (the first reason given stands).
    pub fn end(&self, why: FeedEnded) {
        self.0.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(why);
            }
            first
        });
    }

    /// Sees the reason, once one is given.
    pub fn watch(&self) -> watch::Receiver<Option<FeedEnded>> {
        self.0.subscribe()
    }
}

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
            ends: ctx.data_opt::<FeedEnds>().cloned(),
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
    ends: Option<FeedEnds>,
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
                    if let Some(ends) = &self.ends {
                        ends.end(FeedEnded::FellBehind);
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
