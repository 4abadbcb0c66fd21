//! `mixed`: a sales day in small. Agents mostly read the project page, and
//! between reads they reserve a plot, release one of their holds, or convert
//! one into a sale. Plots are drawn from a popular slice of the project, so
//! agents sometimes collide the way they do on the best plots.

use std::sync::Arc;

use super::{Budget, RunReport, Target, drive};
use crate::client;

/// Out of 100 steps: reads, then reserves, then releases; converts are the rest.
const READ: u32 = 55;
const RESERVE: u32 = READ + 30;
const RELEASE: u32 = RESERVE + 10;
/// How many plots the agents choose from: small enough that they collide.
const POPULAR_PLOTS: usize = 2000;

pub async fn run(target: &Target, budget: Budget) -> RunReport {
    let budget = Arc::new(budget);
    let popular: Arc<Vec<String>> =
        Arc::new(target.plots.iter().take(POPULAR_PLOTS).cloned().collect());
    let project = target.project_id.clone();
    let summary = drive("mixed", &target.clients, |_, client, recorder| {
        let (budget, popular, project) =
            (Arc::clone(&budget), Arc::clone(&popular), project.clone());
        async move {
            let mut holds: Vec<String> = Vec::new();
            while budget.take() {
                let step = fastrand::u32(0..100);
                let answer = if step < READ {
                    client.project_page(&project).await
                } else if step < RESERVE || holds.is_empty() {
                    let Some(plot) = pick(&popular) else { break };
                    let answer = client.reserve(plot).await;
                    if let Some(id) = client::reservation_id(&answer) {
                        holds.push(id);
                    }
                    answer
                } else {
                    let hold = holds.swap_remove(fastrand::usize(0..holds.len()));
                    if step < RELEASE {
                        client.release(&hold).await
                    } else {
                        client.convert(&hold).await
                    }
                };
                recorder.record(&answer);
            }
        }
    })
    .await;
    RunReport {
        notes: vec![format!("plots drawn from {} popular ones", popular.len())],
        ..RunReport::of(summary)
    }
}

fn pick(plots: &[String]) -> Option<&String> {
    if plots.is_empty() {
        None
    } else {
        plots.get(fastrand::usize(0..plots.len()))
    }
}
