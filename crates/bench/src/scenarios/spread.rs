//! `spread`: every agent reserves random plots of the one large project, as
//! fast as answers come back. Each plot is handed out once (a shared cursor
//! over the shuffled plots), so every request reserves an AVAILABLE plot and
//! the run measures the reserve path itself, not collisions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::{Budget, RunReport, Target, drive};

pub async fn run(target: &Target, budget: Budget) -> RunReport {
    let budget = Arc::new(budget);
    let cursor = Arc::new(AtomicUsize::new(0));
    let exhausted = Arc::new(AtomicBool::new(false));
    let plots = Arc::clone(&target.plots);
    let summary = drive("spread", &target.clients, |_, client, recorder| {
        let (budget, cursor, exhausted, plots) = (
            Arc::clone(&budget),
            Arc::clone(&cursor),
            Arc::clone(&exhausted),
            Arc::clone(&plots),
        );
        async move {
            while budget.take() {
                let Some(plot) = plots.get(cursor.fetch_add(1, Ordering::Relaxed)) else {
                    exhausted.store(true, Ordering::Relaxed);
                    break;
                };
                recorder.record(&client.reserve(plot).await);
            }
        }
    })
    .await;
    let mut notes = Vec::new();
    if exhausted.load(Ordering::Relaxed) {
        notes.push(format!(
            "all {} available plots were reserved before the budget was spent",
            plots.len()
        ));
    }
    RunReport {
        summary,
        notes,
        failures: Vec::new(),
    }
}
