//! The work a write owes once it has committed, the same whichever process
//! made it (a server's mutation, the worker's job or sweep): the delayed jobs
//! of each hold that began or was extended (its release at `expires_at`, and
//! its expiry warning before that; a hold the line began is one of them), the
//! live events of every change, and the metrics of each end, warning and
//! move of a line.
//!
//! Redis being down never fails the write: the write stands, the sweep
//! releases a hold whose job was lost, and live subscribers re-read when
//! their feed comes back; so every failure here is logged and counted, never
//! raised. Each Redis call is bounded (`holdfast-queue`), and they run side
//! by side, so with Redis away the caller waits for one bound, not several.

use chrono::{DateTime, Utc};
use holdfast_domain::job::HoldJob;
use holdfast_domain::{Effects, Hold, Policy};
use holdfast_queue::{Announcements, EventPublisher, ReleaseQueue};

use crate::metrics::{
    ENQUEUE_FAILURES_TOTAL, EVENT_PUBLISH_FAILURES_TOTAL, EVENTS_PUBLISHED_TOTAL,
    EXPIRY_WARNINGS_TOTAL, HOLD_EVENTS_PUBLISHED_TOTAL, hold_ended, line_moved,
};

/// Where the work goes, and the rules that say when a hold is warned.
#[derive(Debug, Clone)]
pub struct Outbox {
    pub queue: ReleaseQueue,
    pub events: EventPublisher,
    pub policy: Policy,
}

impl Outbox {
    pub fn new(queue: ReleaseQueue, policy: Policy) -> Self {
        Self {
            events: EventPublisher::new(queue.clone()),
            queue,
            policy,
        }
    }

    /// Does the work `effects` owe.
    pub async fn after_commit(&self, effects: &Effects) {
        if effects.is_empty() {
            return;
        }
        let now = Utc::now();
        for hold in &effects.ended {
            hold_ended(&hold.reservation);
        }
        line_moved(effects);
        metrics::counter!(EXPIRY_WARNINGS_TOTAL).increment(effects.warned.len() as u64);
        let begun = effects
            .started
            .iter()
            .map(|h| (h, h.reservation.created_at));
        let moved = effects.extended.iter().map(|h| (h, now));
        let holds: Vec<_> = begun.chain(moved).collect();
        let announced = Announcements::of_effects(effects, now);
        tokio::join!(self.schedule(&holds), self.announce(&announced));
    }

    /// Schedules, in one round trip, the jobs of each hold and the moment it
    /// runs from: its release at `expires_at`, and its warning unless the
    /// hold is no longer than the warning.
    async fn schedule(&self, holds: &[(&Hold, DateTime<Utc>)]) {
        if holds.is_empty() {
            return;
        }
        let jobs: Vec<_> = holds
            .iter()
            .flat_map(|(hold, from)| {
                let r = &hold.reservation;
                let warning = self
                    .policy
                    .warning_at(*from, r.expires_at)
                    .map(|at| (HoldJob::warning(r), at));
                std::iter::once((HoldJob::release(r), r.expires_at)).chain(warning)
            })
            .collect();
        let Err(error) = self.queue.schedule_all(&jobs).await else {
            return;
        };
        for (hold, _) in holds {
            let r = &hold.reservation;
            tracing::warn!(
                reservation.id = %r.id,
                reservation.version = r.version,
                %error,
                "could not schedule the release job; the sweep will release this hold"
            );
            metrics::counter!(ENQUEUE_FAILURES_TOTAL).increment(1);
        }
    }

    /// Publishes what a write announces for live subscribers.
    async fn announce(&self, announced: &Announcements) {
        let (changes, holds) = (announced.changes.len(), announced.holds.len());
        match self.events.publish(announced).await {
            Ok(_) => {
                metrics::counter!(EVENTS_PUBLISHED_TOTAL).increment(changes as u64);
                metrics::counter!(HOLD_EVENTS_PUBLISHED_TOTAL).increment(holds as u64);
            }
            Err(error) => {
                metrics::counter!(EVENT_PUBLISH_FAILURES_TOTAL).increment((changes + holds) as u64);
                tracing::warn!(
                    %error,
                    changes,
                    hold_events = holds,
                    "could not publish live events; live subscribers miss them"
                );
            }
        }
    }
}
