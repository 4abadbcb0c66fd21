//! `spread`: every agent reserves random plots of the one large project, as
//! fast as answers come back. Each plot is handed out once (a shared cursor
//! over the shuffled plots), so every request reserves an AVAILABLE plot and
//! the run measures the reserve path itself, not collisions. `reads` runs the
//! same agents as its background load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::{Budget, RunReport, Target, drive};
use crate::client::AgentClient;
use crate::stats::Recorder;

/// The shuffled plots, handed out once each to whichever agent asks next.
#[derive(Debug)]
pub struct Cursor {
    plots: Arc<Vec<String>>,
    next: AtomicUsize,
    exhausted: AtomicBool,
}

impl Cursor {
    pub fn new(plots: Arc<Vec<String>>) -> Self {
        Self {
            plots,
            next: AtomicUsize::new(0),
            exhausted: AtomicBool::new(false),
        }
    }

    fn next(&self) -> Option<&String> {
        let plot = self.plots.get(self.next.fetch_add(1, Ordering::Relaxed));
        if plot.is_none() {
            self.exhausted.store(true, Ordering::Relaxed);
        }
        plot
    }

    /// A note for the report when the plots ran out before the budget.
    pub fn note(&self) -> Option<String> {
        self.exhausted.load(Ordering::Relaxed).then(|| {
            format!(
                "all {} available plots were reserved before the budget was spent",
                self.plots.len()
            )
        })
    }
}

/// One spread agent: reserves the next plot, again and again, until the
/// budget or the plots run out.
pub async fn reserve_loop(
    client: AgentClient,
    budget: Arc<Budget>,
    cursor: Arc<Cursor>,
    recorder: Arc<Recorder>,
) {
    while budget.take() {
        let Some(plot) = cursor.next() else { break };
        recorder.record(&client.reserve(plot).await);
    }
}

pub async fn run(target: &Target, budget: Budget) -> RunReport {
    let budget = Arc::new(budget);
    let cursor = Arc::new(Cursor::new(Arc::clone(&target.plots)));
    let summary = drive("spread", &target.clients, |_, client, recorder| {
        reserve_loop(client, Arc::clone(&budget), Arc::clone(&cursor), recorder)
    })
    .await;
    RunReport {
        notes: cursor.note().into_iter().collect(),
        ..RunReport::of(summary)
    }
}
