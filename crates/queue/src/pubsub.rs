//! Live events over Redis pub/sub: whichever process changes a hold (a
//! server replica, the worker's jobs or sweep) publishes what it announces
//! after its commit, and every server fans it out to its live subscribers.
//! Two channels per workspace, `<HOLDFAST_QUEUE>:events:<workspace id>` for
//! property changes and `<HOLDFAST_QUEUE>:holds:<workspace id>` for hold
//! events; a server listens to all of them with one pattern subscription.
//!
//! Pub/sub is at-most-once: an event published while a server is not
//! listening is not replayed. Subscribers are told when the feed breaks (see
//! [`EventSubscriber`]) so that they can re-read and subscribe again.

use std::time::Duration;

use futures::{Stream, StreamExt};
use holdfast_domain::WorkspaceId;

use crate::events::{Announcements, HoldEvent, PropertyChanged};
use crate::{QueueError, ReleaseQueue};

/// How long a publish may take, connecting included: it runs after a commit,
/// on the request's time.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);

/// The channel of one workspace's property changes.
pub fn events_channel(queue_name: &str, workspace: WorkspaceId) -> String {
    format!("{queue_name}:events:{workspace}")
}

/// The channel of one workspace's hold events.
pub fn holds_channel(queue_name: &str, workspace: WorkspaceId) -> String {
    format!("{queue_name}:holds:{workspace}")
}

/// The patterns that match every workspace's channels of one queue. Queue
/// names may not contain glob characters, so they match nothing else.
pub fn patterns(queue_name: &str) -> [String; 2] {
    [
        format!("{queue_name}:events:*"),
        format!("{queue_name}:holds:*"),
    ]
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

    /// Publishes what a write announces in one round trip; returns how many
    /// subscriber connections (server processes) received it in total.
    pub async fn publish(&self, announced: &Announcements) -> Result<u64, QueueError> {
        if announced.is_empty() {
            return Ok(0);
        }
        let queue = self.queue.queue_name();
        let mut pipe = redis::pipe();
        for change in &announced.changes {
            pipe.cmd("PUBLISH")
                .arg(events_channel(queue, change.workspace_id))
                .arg(serde_json::to_string(change)?);
        }
        for event in &announced.holds {
            pipe.cmd("PUBLISH")
                .arg(holds_channel(queue, event.workspace_id))
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
    Hold(HoldEvent),
    /// A message on the channel that is not a change (logged and skipped by
    /// the caller; never fatal).
    Malformed {
        channel: String,
        error: String,
    },
}

/// One subscription to every workspace's changes and hold events of a
/// queue: a dedicated Redis connection (pub/sub connections can do nothing
/// else).
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
            pubsub.psubscribe(&patterns(queue_name)).await?;
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
        let holds_prefix = format!("{queue_name}:holds:");
        let messages = messages.map(move |msg| {
            let payload = msg.get_payload_bytes();
            let parsed = if msg.get_channel_name().starts_with(&holds_prefix) {
                serde_json::from_slice(payload).map(Received::Hold)
            } else {
                serde_json::from_slice(payload).map(Received::Change)
            };
            Some(parsed.unwrap_or_else(|e| Received::Malformed {
                channel: msg.get_channel_name().to_owned(),
                error: e.to_string(),
            }))
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
    fn every_channel_of_a_queue_matches_a_pattern_and_starts_with_its_name() {
        let ws = WorkspaceId::new();
        let [changes, holds] = patterns("hf-x");
        for (channel, pattern) in [
            (events_channel("hf-x", ws), changes),
            (holds_channel("hf-x", ws), holds),
        ] {
            assert!(channel.starts_with("hf-x:"));
            assert!(channel.starts_with(pattern.trim_end_matches('*')));
        }
    }
}
