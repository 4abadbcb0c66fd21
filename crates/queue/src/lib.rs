//! The release-job queue in Redis: the server schedules a
//! `ReleaseReservation` at a reservation's `expires_at` with [`ReleaseQueue`],
//! and the worker consumes the same queue through [`ReleaseQueue::storage`].
//!
//! Every Redis key either side writes starts with the queue name
//! (`HOLDFAST_QUEUE`), so several deployments or tests can share one Redis.

mod error;
pub mod events;
mod housekeeping;
mod queue;
mod storage;

pub use error::QueueError;
pub use events::{EventPublisher, EventSubscriber, PropertyChanged};
pub use housekeeping::Retention;
pub use queue::{ReleaseQueue, client};
pub use storage::{
    HEARTBEAT_INTERVAL, MISSED_HEARTBEATS, POLL_INTERVAL, ReleaseStorage, storage_config,
    sweep_lock_key, validate_queue_name,
};
