//! `hot`: every agent reserves the same AVAILABLE plot at the same instant.
//! Connections are opened first, then a barrier releases all the requests
//! together. Exactly one may win; every other agent must be told
//! PROPERTY_UNAVAILABLE, and nothing else.

use std::sync::Arc;

use anyhow::bail;
use tokio::sync::Barrier;

use super::{RunReport, Target, drive};

const BARRIER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
use crate::outcome::{Op, Outcome};

pub async fn run(target: &Target) -> anyhow::Result<RunReport> {
    let Some(plot) = target.plots.first().cloned() else {
        bail!("hot needs one AVAILABLE plot, the project has none");
    };
    let n = target.clients.len();
    let barrier = Arc::new(Barrier::new(n));
    let summary = drive("hot", &target.clients, |_, client, recorder| {
        let (barrier, plot) = (Arc::clone(&barrier), plot.clone());
        async move {
            // Not recorded: only the race is measured.
            let _ = client.warm_up().await;
            // Bounded: an agent that never arrives must not hang the others.
            let _ = tokio::time::timeout(BARRIER_TIMEOUT, barrier.wait()).await;
            recorder.record(&client.reserve(&plot).await);
        }
    })
    .await;
    let won = summary.count(Op::Reserve, Outcome::Ok);
    let unavailable = summary.count(Op::Reserve, Outcome::Unavailable);
    let mut failures = Vec::new();
    if won != 1 || unavailable != (n as u64).saturating_sub(1) || summary.total.count != n as u64 {
        failures.push(format!(
            "hot: {n} agents on plot {plot}: {won} reserved and {unavailable} PROPERTY_UNAVAILABLE \
             out of {} answers; expected exactly 1 and {}",
            summary.total.count,
            n.saturating_sub(1)
        ));
    }
    Ok(RunReport {
        notes: vec![format!("hot plot {plot}")],
        failures,
        ..RunReport::of(summary)
    })
}
