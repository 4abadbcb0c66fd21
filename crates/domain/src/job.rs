//! The delayed jobs of a hold: the server (or the worker, for a hold it
//! began) schedules them in Redis after the commit, and the worker runs them
//! at their time: the release at a reservation's `expires_at`, and the
//! warning `HOLDFAST_EXPIRY_WARNING` before it.

use serde::{Deserialize, Serialize};

use crate::entities::reservation::Model as Reservation;
use crate::ids::{ReservationId, WorkspaceId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldJob {
    pub workspace_id: WorkspaceId,
    pub reservation_id: ReservationId,
    /// The reservation's version when the job was scheduled: an extension
    /// bumps it, and the jobs of an earlier version then change nothing.
    pub version: i32,
    /// What the job does. Jobs scheduled before warnings existed have no
    /// kind, and are releases.
    #[serde(default)]
    pub kind: JobKind,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// End the hold as EXPIRED, at its `expires_at`.
    #[default]
    Release,
    /// Warn its agent that the end is near.
    Warn,
}

impl HoldJob {
    /// The release of `r` at its current version.
    pub fn release(r: &Reservation) -> Self {
        Self::of(r, JobKind::Release)
    }

    /// The expiry warning of `r` at its current version.
    pub fn warning(r: &Reservation) -> Self {
        Self::of(r, JobKind::Warn)
    }

    fn of(r: &Reservation, kind: JobKind) -> Self {
        Self {
            workspace_id: r.workspace_id,
            reservation_id: r.id,
            version: r.version,
            kind,
        }
    }

    /// The queue's task id. It names the kind and the version because the
    /// queue drops a push whose id is already present: the jobs of an
    /// extension must not be taken for duplicates of the first ones.
    pub fn task_id(&self) -> String {
        let kind = match self.kind {
            JobKind::Release => "release",
            JobKind::Warn => "warn",
        };
        format!("{kind}-{}-v{}", self.reservation_id, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_scheduled_before_warnings_existed_is_a_release() {
        let old = r#"{"workspace_id":"01a21478-d2e6-7bde-841a-562a2013a337","reservation_id":"01a21478-d343-7307-85d6-c46d5fce0640","version":2}"#;
        let job: HoldJob = serde_json::from_str(old).expect("an old payload");
        assert_eq!(job.kind, JobKind::Release);
        assert!(job.task_id().starts_with("release-"));
        let warning = HoldJob {
            kind: JobKind::Warn,
            ..job
        };
        assert!(warning.task_id().starts_with("warn-") && warning.task_id().ends_with("-v2"));
    }
}
