//! `story-2.5`: the original load test (k6, 50 virtual users, 30 s, no
//! double booking). Each user races the others for a handful of plots: when
//! it wins one it releases it at once, so the plots keep changing hands and
//! every reserve is a race. The invariant check afterwards is the verdict.

use std::sync::Arc;
use std::time::Duration;

use super::{Budget, RunReport, Target, drive};
use crate::client;

/// The story's load: 50 virtual users for 30 s.
pub const USERS: usize = 50;
pub const DURATION: Duration = Duration::from_secs(30);
/// As many plots as AC-2.5.3 has simultaneous reservations.
const CONTESTED_PLOTS: usize = 10;

pub async fn run(target: &Target, budget: Budget) -> RunReport {
    let budget = Arc::new(budget);
    let contested: Arc<Vec<String>> =
        Arc::new(target.plots.iter().take(CONTESTED_PLOTS).cloned().collect());
    let summary = drive("story-2.5", &target.clients, |_, client, recorder| {
        let (budget, contested) = (Arc::clone(&budget), Arc::clone(&contested));
        async move {
            while !contested.is_empty() && budget.take() {
                let plot = &contested[fastrand::usize(0..contested.len())];
                let answer = client.reserve(plot).await;
                recorder.record(&answer);
                if let Some(id) = client::reservation_id(&answer) {
                    recorder.record(&client.release(&id).await);
                }
            }
        }
    })
    .await;
    let mut notes = vec![format!(
        "{} users racing for {} plots",
        target.clients.len(),
        contested.len()
    )];
    if target.clients.len() != USERS {
        notes.push(format!("the story asks for {USERS} users"));
    }
    RunReport {
        notes,
        ..RunReport::of(summary)
    }
}
