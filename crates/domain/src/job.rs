//! The release job's payload: what the server schedules in Redis at a
//! reservation's `expires_at`, and the worker runs then.

use serde::{Deserialize, Serialize};

use crate::ids::{ReservationId, WorkspaceId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseReservation {
    pub workspace_id: WorkspaceId,
    pub reservation_id: ReservationId,
    /// The reservation's version when the job was scheduled: an extension
    /// bumps it, and the job of an earlier version then changes nothing.
    pub version: i32,
}

impl ReleaseReservation {
    /// The queue's task id. It names the version because the queue drops a
    /// push whose id is already present: the job of an extension must not be
    /// taken for a duplicate of the first one.
    pub fn task_id(&self) -> String {
        format!("release-{}-v{}", self.reservation_id, self.version)
    }
}
