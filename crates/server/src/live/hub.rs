//! The in-process end of the fan-out: ONE Redis pattern subscription per
//! server process, whose changes are handed to the subscribers of each
//! workspace through a bounded broadcast channel per workspace and topic
//! (property changes, hold events), so that a burst of one kind never uses
//! up the buffer of the other's subscribers. A send never
//! waits for a subscriber: one that falls more than `buffer` changes behind
//! finds out on its next read (`Lagged`) and is dropped, the others go on.
//!
//! When the Redis subscription is lost, every channel is closed (each
//! subscriber gets an error, then its subscription completes), new
//! subscriptions are refused until it is back, and the hub reconnects on its
//! own: clients re-read and subscribe again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use holdfast_domain::WorkspaceId;
use holdfast_domain::entities::{PropertyStatus, property};
use holdfast_queue::{EventSubscriber, HoldEvent, PropertyChanged, Received};
use tokio::sync::{broadcast, watch};

use crate::metrics;

/// Changes a subscriber may fall behind before it is dropped, by default.
pub const DEFAULT_SUBSCRIBER_BUFFER: usize = 1024;
/// What one subscription resolver gets: a property change with the property
/// as it is right after it, or a hold event.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "each delivery is built once and shared behind an Arc by every subscriber: \
              boxing the larger variant would add an allocation per change and save nothing"
)]
pub enum Delivery {
    Property {
        change: PropertyChanged,
        property: property::Model,
    },
    Hold(HoldEvent),
}

/// What a subscription listens to: each has its own channel per workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `Delivery::Property`: what `propertyChanged` sends.
    Properties,
    /// `Delivery::Hold`: what `holdEvents` sends.
    Holds,
}

impl Delivery {
    fn channel(&self) -> (WorkspaceId, Topic) {
        match self {
            Delivery::Property { change, .. } => (change.workspace_id, Topic::Properties),
            Delivery::Hold(event) => (event.workspace_id, Topic::Holds),
        }
    }
}

type Channels = HashMap<(WorkspaceId, Topic), broadcast::Sender<Arc<Delivery>>>;

/// Why a subscription cannot start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubUnavailable {
    /// Redis cannot be reached (or the subscription is being re-made).
    Disconnected,
}

/// The process's hub; cheap to clone. The listening task stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
    _task: Arc<AbortOnDrop>,
}

struct Inner {
    connected: watch::Sender<bool>,
    channels: Mutex<Channels>,
    buffer: usize,
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("connected", &self.is_connected())
            .field("buffer", &self.inner.buffer)
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// Starts listening (in the background, reconnecting for ever) to the
    /// changes of `queue_name` on `redis_url`.
    pub fn start(redis_url: String, queue_name: String, buffer: usize) -> Self {
        let inner = Arc::new(Inner {
            connected: watch::Sender::new(false),
            channels: Mutex::new(HashMap::new()),
            buffer: buffer.max(1),
        });
        let task = tokio::spawn(listen(Arc::clone(&inner), redis_url, queue_name));
        Self {
            inner,
            _task: Arc::new(AbortOnDrop(task.abort_handle())),
        }
    }

    /// Whether the Redis subscription is up.
    pub fn is_connected(&self) -> bool {
        *self.inner.connected.borrow()
    }

    /// Waits until the Redis subscription is up, at most `within`; whether it is.
    pub async fn wait_connected(&self, within: Duration) -> bool {
        let mut connected = self.inner.connected.subscribe();
        tokio::time::timeout(within, connected.wait_for(|c| *c))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// A receiver of `workspace`'s deliveries of `topic` from now on.
    pub fn subscribe(
        &self,
        workspace: WorkspaceId,
        topic: Topic,
    ) -> Result<broadcast::Receiver<Arc<Delivery>>, HubUnavailable> {
        let mut channels = self.inner.lock();
        // Checked under the lock that `disconnect` takes: a receiver made
        // here is either closed by the next disconnect or sees every change.
        if !self.is_connected() {
            return Err(HubUnavailable::Disconnected);
        }
        let sender = channels
            .entry((workspace, topic))
            .or_insert_with(|| broadcast::channel(self.inner.buffer).0);
        Ok(sender.subscribe())
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Channels> {
        // A panic while holding this lock leaves the map usable.
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes every channel: each subscriber gets `Closed` after the changes
    /// already sent to it.
    fn disconnect(&self) {
        let mut channels = self.lock();
        self.connected.send_replace(false);
        channels.clear();
    }

    fn deliver(&self, delivery: Delivery) {
        let mut channels = self.lock();
        let channel = delivery.channel();
        if let Some(sender) = channels.get(&channel)
            && sender.send(Arc::new(delivery)).is_err()
        {
            // Nobody listens to this workspace's topic any more.
            channels.remove(&channel);
        }
    }
}

/// Subscribes, fans out, and on a lost connection closes every channel and
/// tries again, backing off up to 2 s.
async fn listen(inner: Arc<Inner>, redis_url: String, queue_name: String) {
    let mut pause = Duration::from_millis(100);
    let mut failing_since_logged = false;
    loop {
        match EventSubscriber::connect(&redis_url, &queue_name).await {
            Ok(stream) => {
                inner.connected.send_replace(true);
                tracing::info!(queue = %queue_name, "live updates: listening to changes in Redis");
                failing_since_logged = false;
                pause = Duration::from_millis(100);
                let mut stream = std::pin::pin!(stream);
                while let Some(received) = stream.next().await {
                    fan_out(&inner, received);
                }
                inner.disconnect();
                metrics::live_disconnect();
                tracing::warn!(
                    "live updates: lost the Redis subscription; subscriptions ended, reconnecting"
                );
            }
            Err(e) => {
                if !failing_since_logged {
                    tracing::warn!(error = %e, "live updates: cannot subscribe in Redis; retrying");
                    failing_since_logged = true;
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// Hands one message to the subscribers of its workspace.
fn fan_out(inner: &Inner, received: Received) {
    let delivery = match received {
        Received::Change(change) => {
            let reserved = change.status == PropertyStatus::Reserved;
            let property = property::Model {
                id: change.property_id,
                workspace_id: change.workspace_id,
                project_id: change.project_id,
                code: change.code.clone(),
                status: change.status,
                reserved_by_id: change.reserved_by_id.filter(|_| reserved),
                reserved_until: change.reserved_until.filter(|_| reserved),
                updated_at: change.at,
                price: change.price.clone(),
            };
            Delivery::Property { change, property }
        }
        Received::Hold(event) => Delivery::Hold(event),
        Received::Malformed { channel, error } => {
            tracing::warn!(%channel, %error, "live updates: skipped a malformed message");
            return;
        }
    };
    metrics::live_events_received(1);
    inner.deliver(delivery);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use holdfast_domain::{ProjectId, PropertyId, ReservationId, UserId};
    use holdfast_queue::HoldEventKind;
    use tokio::sync::broadcast::error::TryRecvError;

    fn hub(buffer: usize) -> Hub {
        let inner = Arc::new(Inner {
            connected: watch::Sender::new(true),
            channels: Mutex::new(HashMap::new()),
            buffer,
        });
        let idle = tokio::spawn(std::future::pending::<()>());
        Hub {
            inner,
            _task: Arc::new(AbortOnDrop(idle.abort_handle())),
        }
    }

    fn reserved(workspace: WorkspaceId) -> [Delivery; 2] {
        let (property, agent, at) = (PropertyId::new(), UserId::new(), Utc::now());
        let change = PropertyChanged {
            workspace_id: workspace,
            project_id: ProjectId::new(),
            property_id: property,
            code: "A-017".into(),
            previous_status: PropertyStatus::Available,
            status: PropertyStatus::Reserved,
            at,
            reserved_by_id: Some(agent),
            reserved_until: Some(at),
            price: None,
        };
        let model = property::Model {
            id: property,
            workspace_id: workspace,
            project_id: change.project_id,
            code: change.code.clone(),
            status: change.status,
            reserved_by_id: change.reserved_by_id,
            reserved_until: change.reserved_until,
            updated_at: at,
            price: None,
        };
        let event = HoldEvent {
            workspace_id: workspace,
            agent_id: agent,
            kind: HoldEventKind::Reserved,
            at,
            reservation_id: Some(ReservationId::new()),
            queue_entry_id: None,
        };
        [
            Delivery::Property {
                change,
                property: model,
            },
            Delivery::Hold(event),
        ]
    }

    /// A reserve is both a property change and a hold event: a burst of as
    /// many reserves as the buffer holds must not make a `propertyChanged`
    /// subscriber fall behind because of the hold events beside them.
    #[tokio::test]
    async fn each_topic_has_its_own_buffer() {
        let hub = hub(4);
        let workspace = WorkspaceId::new();
        let mut changes = hub.subscribe(workspace, Topic::Properties).expect("up");
        let mut holds = hub.subscribe(workspace, Topic::Holds).expect("up");
        for _ in 0..4 {
            for delivery in reserved(workspace) {
                hub.inner.deliver(delivery);
            }
        }
        for receiver in [&mut changes, &mut holds] {
            for _ in 0..4 {
                receiver.try_recv().expect("every delivery, none lagged");
            }
            assert_eq!(
                receiver.try_recv().expect_err("nothing more"),
                TryRecvError::Empty
            );
        }
    }
}
