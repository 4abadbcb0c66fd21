//! The in-process end of the fan-out: ONE Redis pattern subscription per
//! server process, whose changes are handed to the subscribers of each
//! workspace through a bounded broadcast channel per workspace. A send never
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
use holdfast_domain::entities::property;
use holdfast_domain::{PropertyId, WorkspaceId};
use holdfast_queue::events::Received;
use holdfast_queue::{EventSubscriber, PropertyChanged};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use tokio::sync::{broadcast, watch};

use crate::metrics;

/// Changes a subscriber may fall behind before it is dropped, by default.
pub const DEFAULT_SUBSCRIBER_BUFFER: usize = 1024;
/// Property codes remembered (they never change); the cache is emptied when full.
const CODE_CACHE_LIMIT: usize = 100_000;
/// Changes handled per round: one code lookup for all of them.
const BATCH: usize = 256;
/// Longest a lookup of changed properties may take: on a silent link to
/// PostgreSQL the feed ends (its clients re-read) instead of stalling.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// One change, ready for the subscription resolver: the wire event and the
/// property as it is right after the change.
#[derive(Debug)]
pub struct Delivery {
    pub change: PropertyChanged,
    pub property: property::Model,
}

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
    channels: Mutex<HashMap<WorkspaceId, broadcast::Sender<Arc<Delivery>>>>,
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
    pub fn start(
        redis_url: String,
        queue_name: String,
        db: DatabaseConnection,
        buffer: usize,
    ) -> Self {
        let inner = Arc::new(Inner {
            connected: watch::Sender::new(false),
            channels: Mutex::new(HashMap::new()),
            buffer: buffer.max(1),
        });
        let task = tokio::spawn(listen(Arc::clone(&inner), redis_url, queue_name, db));
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

    /// A receiver of `workspace`'s changes from now on.
    pub fn subscribe(
        &self,
        workspace: WorkspaceId,
    ) -> Result<broadcast::Receiver<Arc<Delivery>>, HubUnavailable> {
        let mut channels = self.inner.lock();
        // Checked under the lock that `disconnect` takes: a receiver made
        // here is either closed by the next disconnect or sees every change.
        if !self.is_connected() {
            return Err(HubUnavailable::Disconnected);
        }
        let sender = channels
            .entry(workspace)
            .or_insert_with(|| broadcast::channel(self.inner.buffer).0);
        Ok(sender.subscribe())
    }
}

impl Inner {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<WorkspaceId, broadcast::Sender<Arc<Delivery>>>> {
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

    /// Closes the channels of these workspaces (their feed has a gap).
    fn close(&self, workspaces: impl IntoIterator<Item = WorkspaceId>) {
        let mut channels = self.lock();
        for ws in workspaces {
            channels.remove(&ws);
        }
    }

    fn deliver(&self, delivery: Delivery) {
        let mut channels = self.lock();
        let ws = delivery.change.workspace_id;
        if let Some(sender) = channels.get(&ws)
            && sender.send(Arc::new(delivery)).is_err()
        {
            // Nobody listens to this workspace any more.
            channels.remove(&ws);
        }
    }
}

/// Subscribes, fans out, and on a lost connection closes every channel and
/// tries again, backing off up to 2 s.
async fn listen(inner: Arc<Inner>, redis_url: String, queue_name: String, db: DatabaseConnection) {
    let mut codes = CodeCache::default();
    let mut pause = Duration::from_millis(100);
    let mut failing_since_logged = false;
    loop {
        match EventSubscriber::connect(&redis_url, &queue_name).await {
            Ok(stream) => {
                inner.connected.send_replace(true);
                tracing::info!(queue = %queue_name, "live updates: listening to changes in Redis");
                failing_since_logged = false;
                pause = Duration::from_millis(100);
                let mut batches = std::pin::pin!(stream.ready_chunks(BATCH));
                while let Some(batch) = batches.next().await {
                    fan_out(&inner, &db, &mut codes, batch).await;
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

async fn fan_out(
    inner: &Inner,
    db: &DatabaseConnection,
    codes: &mut CodeCache,
    batch: Vec<Received>,
) {
    let mut changes = Vec::with_capacity(batch.len());
    for item in batch {
        match item {
            Received::Change(change) => changes.push(change),
            Received::Malformed { channel, error } => {
                tracing::warn!(%channel, %error, "live updates: skipped a malformed message");
            }
        }
    }
    metrics::live_events_received(changes.len());
    // Only workspaces someone listens to cost a lookup.
    let listened: Vec<PropertyChanged> = {
        let channels = inner.lock();
        changes
            .into_iter()
            .filter(|c| channels.contains_key(&c.workspace_id))
            .collect()
    };
    if listened.is_empty() {
        return;
    }
    let filled = tokio::time::timeout(
        LOOKUP_TIMEOUT,
        codes.fill(db, listened.iter().map(|c| c.property_id)),
    )
    .await
    .unwrap_or_else(|_| {
        Err(sea_orm::DbErr::Custom(format!(
            "no answer within {LOOKUP_TIMEOUT:?}"
        )))
    });
    if let Err(e) = filled {
        // Without the codes these changes cannot be shown; rather than
        // skip them silently, end those workspaces' subscriptions so that
        // their clients re-read.
        tracing::error!(error = %e, "live updates: cannot look up the changed properties; ending the subscriptions of their workspaces");
        inner.close(listened.iter().map(|c| c.workspace_id));
        return;
    }
    for change in listened {
        let Some((workspace, code)) = codes.get(change.property_id) else {
            tracing::warn!(property.id = %change.property_id, "live updates: a change of an unknown property");
            continue;
        };
        if workspace != change.workspace_id {
            tracing::warn!(property.id = %change.property_id, "live updates: a change names the wrong workspace; skipped");
            continue;
        }
        let reserved = change.status == holdfast_domain::entities::PropertyStatus::Reserved;
        let property = property::Model {
            id: change.property_id,
            workspace_id: change.workspace_id,
            project_id: change.project_id,
            code: code.to_owned(),
            status: change.status,
            reserved_by_id: change.reserved_by_id.filter(|_| reserved),
            reserved_until: change.reserved_until.filter(|_| reserved),
            updated_at: change.at,
        };
        inner.deliver(Delivery { change, property });
    }
}

/// Property codes (and workspaces) by id: a code never changes, so one
/// lookup per property per process is enough.
#[derive(Default)]
struct CodeCache {
    known: HashMap<PropertyId, (WorkspaceId, String)>,
}

impl CodeCache {
    fn get(&self, id: PropertyId) -> Option<(WorkspaceId, &str)> {
        self.known.get(&id).map(|(ws, code)| (*ws, code.as_str()))
    }

    async fn fill(
        &mut self,
        db: &DatabaseConnection,
        ids: impl Iterator<Item = PropertyId>,
    ) -> Result<(), sea_orm::DbErr> {
        let mut missing: Vec<PropertyId> = ids.filter(|id| !self.known.contains_key(id)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort_unstable();
        missing.dedup();
        if self.known.len() + missing.len() > CODE_CACHE_LIMIT {
            self.known.clear();
        }
        let rows: Vec<(PropertyId, WorkspaceId, String)> = property::Entity::find()
            .select_only()
            .column(property::Column::Id)
            .column(property::Column::WorkspaceId)
            .column(property::Column::Code)
            .filter(property::Column::Id.is_in(missing))
            .into_tuple()
            .all(db)
            .await?;
        for (id, ws, code) in rows {
            self.known.insert(id, (ws, code));
        }
        Ok(())
    }
}
