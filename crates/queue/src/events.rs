//! Property status changes over Redis pub/sub: whichever process changes a
//! property (a server replica, the worker's job or sweep) publishes a
//! [`PropertyChanged`] after its commit, and every server fans it out to its
//! live subscribers. One channel per workspace,
//! `<HOLDFAST_QUEUE>:events:<workspace id>`; a server listens to all of them
//! with one pattern subscription.
//!
//! Pub/sub is at-most-once: a change published while a server is not
//! listening is not replayed. Subscribers are told when the feed breaks (see
//! [`EventSubscriber`]) so that they can re-read and subscribe again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use holdfast_domain::Effects;
use holdfast_domain::entities::{PropertyStatus, ReservationStatus};
use holdfast_domain::{ProjectId, PropertyId, UserId, WorkspaceId};
use serde::{Deserialize, Serialize};

use crate::{QueueError, ReleaseQueue};

/// How long a publish may take, connecting included: it runs after a commit,
/// on the request's time.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);

/// One status change of one property, as it goes over the wire (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyChanged {
    pub workspace_id: WorkspaceId,
    pub project_id: ProjectId,
    pub property_id: PropertyId,
    #[serde(with = "status_name")]
    pub previous_status: PropertyStatus,
    #[serde(with = "status_name")]
    pub status: PropertyStatus,
    /// When the change was committed (the database's clock).
    pub at: DateTime<Utc>,
    /// Who holds the property after the change (RESERVED only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_by_id: Option<UserId>,
    /// Until when (RESERVED only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_until: Option<DateTime<Utc>>,
}

impl PropertyChanged {
    /// The property changes a write committed, in order: each ended hold
    /// (RESERVED to AVAILABLE, or to SOLD for a conversion), then each hold
    /// begun (AVAILABLE to RESERVED). A takeover of a lapsed hold is thus two
    /// changes, so that counts kept by clients stay right. An extension
    /// changes no status and sends nothing.
    pub fn of_effects(effects: &Effects) -> Vec<PropertyChanged> {
        let ended = effects.ended.iter().map(|hold| {
            let r = &hold.reservation;
            let status = if r.status == ReservationStatus::Converted {
                PropertyStatus::Sold
            } else {
                PropertyStatus::Available
            };
            PropertyChanged {
                workspace_id: r.workspace_id,
                project_id: hold.project_id,
                property_id: r.property_id,
                previous_status: PropertyStatus::Reserved,
                status,
                at: r.ended_at.unwrap_or(r.created_at),
                reserved_by_id: None,
                reserved_until: None,
            }
        });
        let started = effects.started.iter().map(|hold| {
            let r = &hold.reservation;
            PropertyChanged {
                workspace_id: r.workspace_id,
                project_id: hold.project_id,
                property_id: r.property_id,
                previous_status: PropertyStatus::Available,
                status: PropertyStatus::Reserved,
                at: r.created_at,
                reserved_by_id: Some(r.agent_id),
                reserved_until: Some(r.expires_at),
            }
        });
        ended.chain(started).collect()
    }
}

/// A property status as its database name (the domain's enum is not serde).
mod status_name {
    use holdfast_domain::entities::PropertyStatus;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(status: &PropertyStatus, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(status.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PropertyStatus, D::Error> {
        let name = String::deserialize(d)?;
        [
            PropertyStatus::Available,
            PropertyStatus::Reserved,
            PropertyStatus::Sold,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
        .ok_or_else(|| D::Error::custom(format!("unknown property status {name}")))
    }
}

/// The channel of one workspace's changes.
pub fn events_channel(queue_name: &str, workspace: WorkspaceId) -> String {
    format!("{queue_name}:events:{workspace}")
}

/// The pattern that matches every workspace's channel of one queue. Queue
/// names may not contain glob characters, so it matches nothing else.
pub fn events_pattern(queue_name: &str) -> String {
    format!("{queue_name}:events:*")
}

/// Publishes changes on the queue's shared connection.
#[derive(Debug, Clone)]
pub struct EventPublisher {
    queue: ReleaseQueue,
}

impl EventPublisher {
    pub fn new(queue: ReleaseQueue) -> Self {
        Self { queue }
    }

    /// Publishes `events` in one round trip; returns how many subscriber
    /// connections (server processes) received them in total.
    pub async fn publish(&self, events: &[PropertyChanged]) -> Result<u64, QueueError> {
        if events.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        for event in events {
            pipe.cmd("PUBLISH")
                .arg(events_channel(self.queue.queue_name(), event.workspace_id))
                .arg(serde_json::to_string(event)?);
        }
        let work = async {
            let mut conn = self.queue.connection().await?;
            let received: Vec<u64> = pipe.query_async(&mut conn).await?;
            Ok::<_, QueueError>(received.into_iter().sum())
        };
        tokio::time::timeout(PUBLISH_TIMEOUT, work)
            .await
            .map_err(|_| QueueError::Timeout(PUBLISH_TIMEOUT))?
    }
}

/// What the subscriber stream yields.
#[derive(Debug)]
pub enum Received {
    Change(PropertyChanged),
    /// A message on the channel that is not a change (logged and skipped by
    /// the caller; never fatal).
    Malformed {
        channel: String,
        error: String,
    },
}

/// One pattern subscription to every workspace's changes of a queue: a
/// dedicated Redis connection (pub/sub connections can do nothing else).
pub struct EventSubscriber;

/// How often the subscription connection is pinged: a silent network
/// partition would otherwise leave it waiting forever.
pub const SUBSCRIBER_PING_INTERVAL: Duration = Duration::from_secs(5);

impl EventSubscriber {
    /// Connects and subscribes. The stream ends when the connection is lost
    /// (closed, or two pings in a row unanswered); the caller reconnects.
    pub async fn connect(
        redis_url: &str,
        queue_name: &str,
    ) -> Result<impl Stream<Item = Received> + Send + use<>, QueueError> {
        let client = crate::queue::client(redis_url)?;
        let bound = Duration::from_secs(2);
        let pubsub = tokio::time::timeout(bound, async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.psubscribe(events_pattern(queue_name)).await?;
            Ok::<_, QueueError>(pubsub)
        })
        .await
        .map_err(|_| QueueError::Timeout(bound))??;
        let (mut sink, messages) = pubsub.split();

        // Ends (and with it the merged stream) when two pings in a row go
        // unanswered: a busy process may answer one late.
        let watchdog = futures::stream::once(async move {
            let mut tick = tokio::time::interval(SUBSCRIBER_PING_INTERVAL);
            tick.tick().await;
            let mut missed = 0;
            loop {
                tick.tick().await;
                // In subscribed mode Redis answers PING with an array, not
                // PONG: any answer will do.
                let pong =
                    tokio::time::timeout(SUBSCRIBER_PING_INTERVAL, sink.ping::<redis::Value>())
                        .await;
                match pong {
                    Ok(Ok(_)) => missed = 0,
                    // The connection is gone: no point waiting.
                    Ok(Err(e)) if e.is_io_error() || e.is_connection_dropped() => return None,
                    _ => missed += 1,
                }
                if missed >= 2 {
                    return None;
                }
            }
        });
        let messages = messages.map(|msg| {
            let received = match serde_json::from_slice::<PropertyChanged>(msg.get_payload_bytes())
            {
                Ok(change) => Received::Change(change),
                Err(e) => Received::Malformed {
                    channel: msg.get_channel_name().to_owned(),
                    error: e.to_string(),
                },
            };
            Some(received)
        });
        // Whichever ends first ends the subscription: the connection closing
        // (messages end) or the watchdog giving up.
        let merged = futures::stream::select(
            messages.chain(futures::stream::once(async { None })),
            watchdog,
        )
        .take_while(|item| std::future::ready(item.is_some()))
        .filter_map(std::future::ready);
        Ok(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_goes_over_the_wire_as_camel_case_json_with_status_names() {
        let change = PropertyChanged {
            workspace_id: WorkspaceId::new(),
            project_id: ProjectId::new(),
            property_id: PropertyId::new(),
            previous_status: PropertyStatus::Available,
            status: PropertyStatus::Reserved,
            at: DateTime::from_timestamp(1_700_000_000, 0).expect("time"),
            reserved_by_id: Some(UserId::new()),
            reserved_until: DateTime::from_timestamp(1_700_000_090, 0),
        };
        let json = serde_json::to_value(&change).expect("encode");
        assert_eq!(json["previousStatus"], "AVAILABLE");
        assert_eq!(json["status"], "RESERVED");
        assert_eq!(json["propertyId"], change.property_id.to_string());
        let back: PropertyChanged = serde_json::from_value(json).expect("decode");
        assert_eq!(back, change);
    }

    #[test]
    fn every_channel_of_a_queue_matches_its_pattern_and_starts_with_its_name() {
        let ws = WorkspaceId::new();
        let channel = events_channel("hf-x", ws);
        assert!(channel.starts_with("hf-x:"));
        assert_eq!(events_pattern("hf-x"), "hf-x:events:*");
        assert!(channel.starts_with(events_pattern("hf-x").trim_end_matches('*')));
    }
}
