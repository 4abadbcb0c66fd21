//! The schema's subscriptions: live property status changes and hold events
//! of the caller's workspace, fed by the process's [`Hub`].

use std::sync::Arc;

use async_graphql::{Context, ID, Result, Subscription as SubscriptionObject};
use futures::Stream;
use holdfast_domain::reads;
use holdfast_domain::{DomainError, ProjectId, UserId, WorkspaceId};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;

use super::context::{parse_id, services, session};
use super::types::{HoldEventNode, PropertyChange};
use crate::error::{ApiError, Code, coded};
use crate::live::{Delivery, Hub, Topic};
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
        feed(
            ctx,
            workspace,
            Topic::Properties,
            move |delivery| match delivery {
                Delivery::Property { change, property }
                    if project.is_none_or(|p| p == change.project_id) =>
                {
                    Some(PropertyChange {
                        property: property.clone(),
                        previous_status: change.previous_status.into(),
                        status: change.status.into(),
                        at: change.at,
                    })
                }
                _ => None,
            },
        )
    }

    /// Events of holds and queue entries. An agent gets their own; a manager or admin gets one agent's with agentId, or every agent's of the workspace without it.
    async fn hold_events(
        &self,
        ctx: &Context<'_>,
        agent_id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<HoldEventNode>> + use<>> {
        let actor = session(ctx).await?.actor();
        let asked: Option<UserId> = agent_id
            .as_ref()
            .map(|id| parse_id("agent id", id))
            .transpose()?;
        let agent = match asked {
            Some(agent) if agent != actor.user_id && !actor.role.is_manager() => {
                return Err(ApiError::Forbidden(
                    "an agent follows only their own holds; managers and admins follow anyone's"
                        .into(),
                )
                .into());
            }
            Some(agent) => {
                // Another workspace's user is NOT_FOUND, like everywhere.
                let found = reads::users_by_ids(&services(ctx)?.db, actor.workspace_id, [agent])
                    .await
                    .map_err(ApiError::from)?;
                if found.is_empty() {
                    return Err(ApiError::from(DomainError::NotFound("user")).into());
                }
                Some(agent)
            }
            None if actor.role.is_manager() => None,
            None => Some(actor.user_id),
        };
        feed(
            ctx,
            actor.workspace_id,
            Topic::Holds,
            move |delivery| match delivery {
                Delivery::Hold(event) if agent.is_none_or(|a| a == event.agent_id) => {
                    Some(HoldEventNode(event.clone()))
                }
                _ => None,
            },
        )
    }
}

/// A subscriber's feed of its workspace's deliveries of `topic`, each
/// turned into what the subscription sends by `pick` (or skipped).
fn feed<T, F>(
    ctx: &Context<'_>,
    workspace: WorkspaceId,
    topic: Topic,
    pick: F,
) -> Result<impl Stream<Item = Result<T>> + use<T, F>>
where
    T: Send + 'static,
    F: Fn(&Delivery) -> Option<T> + Send + 'static,
{
    let hub = ctx.data::<Hub>()?;
    let receiver = hub.subscribe(workspace, topic).map_err(|_| {
        coded(
            Code::ServiceUnavailable,
            "live updates are unavailable (Redis cannot be reached); try again later",
        )
    })?;
    let state = Feed {
        receiver,
        pick,
        ends: ctx.data_opt::<FeedEnds>().cloned(),
        _counted: metrics::Subscriber::open(),
        done: false,
    };
    Ok(futures::stream::unfold(state, Feed::next))
}

/// One subscriber's feed; counted in the subscribers gauge while it lives.
struct Feed<F> {
    receiver: broadcast::Receiver<Arc<Delivery>>,
    pick: F,
    ends: Option<FeedEnds>,
    _counted: metrics::Subscriber,
    done: bool,
}

impl<F> Feed<F> {
    async fn next<T>(mut self) -> Option<(Result<T>, Self)>
    where
        F: Fn(&Delivery) -> Option<T>,
    {
        if self.done {
            return None;
        }
        loop {
            match self.receiver.recv().await {
                Ok(delivery) => {
                    if let Some(item) = (self.pick)(&delivery) {
                        return Some((Ok(item), self));
                    }
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
