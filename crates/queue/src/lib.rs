//! holdfast in Redis: the queue of the holds' delayed jobs (the release at a
//! reservation's `expires_at`, and the expiry warning before it), scheduled
//! with [`ReleaseQueue`] and consumed by the worker through
//! [`ReleaseQueue::storage`]; and the live events every process publishes
//! after its commits ([`events`], carried by [`pubsub`]).
//!
//! Every Redis key either side writes starts with the queue name
//! (`HOLDFAST_QUEUE`), so several deployments or tests can share one Redis.

mod error;
pub mod events;
mod housekeeping;
pub mod pubsub;
mod queue;
mod storage;

pub use error::QueueError;
pub use events::{Announcements, HoldEvent, HoldEventKind, PropertyChanged};
pub use housekeeping::Retention;
pub use pubsub::{EventPublisher, EventSubscriber, Received};
pub use queue::{ReleaseQueue, client};
pub use storage::{
    HEARTBEAT_INTERVAL, MISSED_HEARTBEATS, POLL_INTERVAL, ReleaseStorage, storage_config,
    sweep_lock_key, validate_queue_name,
};
