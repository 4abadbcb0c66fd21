//! `queue`: the line behind held plots, under load. The agents crowd a few
//! plots (one for every two agents). Each, one request after the other,
//! joins the line of one of them at random while it waits in no other line
//! (a free plot nobody waits for is theirs at once, and then they release it
//! or let it lapse, at even odds), looks up which of its places in line
//! became holds and releases about half of those (the rest lapse), now and
//! then leaves the line it waits in, and reads a plot's line as the board
//! shows it. So lines grow, empty, and now and then fill up, and holds end
//! with and without a line behind them. Run it against a server and a worker
//! with a short hold time (`just bench` gives both 5 s), so that holds lapse
//! while the agents work and the lines move when a lapsed hold is ended (by
//! its job, or first by a join, which hands the plot on before it queues) as
//! well as by releases.
//!
//! Expected: no outcome but those the rules give under contention (joined,
//! `ALREADY_QUEUED`, `QUEUE_FULL`, `BUSY`, a release or a leave that came
//! after the hold or the place had ended), and every line read numbered 1..n,
//! during the run and for each plot after it. The caller checks the database
//! (`invariants`): no plot held twice, nobody waiting for a plot that is not
//! held, and every line moved exactly once per hold that ended.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::bail;

use super::{Budget, RunReport, Target, drive};
use crate::invariants;
use crate::outcome::{Op, Outcome};

/// Agents per contested plot. With each agent waiting in one line at most,
/// lines are two long on average: they grow, empty, and now and then fill
/// up (five by default), so holds end with a line and without one.
const AGENTS_PER_PLOT: usize = 2;
/// How many of its newest promoted entries an agent looks at.
const PROMOTED_PAGE: u32 = 20;
/// Lines an agent waits in at once, at most (for its buyer): with no bound,
/// every agent would wait in every line, and lines would never empty.
const MAX_WAITING: usize = 1;
/// Misnumbered lines kept for the report.
const MAX_KEPT: usize = 5;

/// What the agents saw, besides the latencies the recorder keeps.
#[derive(Default)]
struct Seen {
    /// Joins that waited in line, and joins that got a free plot at once.
    waited: AtomicU64,
    at_once: AtomicU64,
    /// Holds begun from the line that their agent released.
    released_from_line: AtomicU64,
    misnumbered: AtomicU64,
    kept: Mutex<Vec<String>>,
}

impl Seen {
    fn check(&self, answer: &crate::client::Answer) {
        if let Some(bad) = invariants::line_numbering(answer) {
            self.misnumbered.fetch_add(1, Ordering::Relaxed);
            let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
            if kept.len() < MAX_KEPT {
                kept.push(bad);
            }
        }
    }
}

/// Whether the agent releases this hold or lets it lapse: even odds, decided
/// once per hold (by its id's last digit, which is random), so that an agent
/// that sees the hold again decides the same.
fn to_release(hold: &str) -> bool {
    hold.bytes()
        .next_back()
        .and_then(|b| char::from(b).to_digit(16))
        .is_some_and(|d| d % 2 == 0)
}

pub async fn run(target: &Target, budget: Budget) -> anyhow::Result<RunReport> {
    let n = target.clients.len();
    let contested: Arc<Vec<String>> = Arc::new(
        target
            .plots
            .iter()
            .take((n / AGENTS_PER_PLOT).max(1))
            .cloned()
            .collect(),
    );
    if contested.is_empty() || n < 2 {
        bail!(
            "queue needs AVAILABLE plots and at least two agents: {n} agents, {} plots",
            target.plots.len()
        );
    }
    let budget = Arc::new(budget);
    let seen = Arc::new(Seen::default());
    let summary = drive("queue", &target.clients, |_, client, recorder| {
        let (budget, contested, seen) = (
            Arc::clone(&budget),
            Arc::clone(&contested),
            Arc::clone(&seen),
        );
        async move {
            // Places this agent was told it waits in, until it learns they
            // became holds or leaves them.
            let mut waiting: Vec<String> = Vec::new();
            while budget.take() {
                let plot = &contested[fastrand::usize(0..contested.len())];
                match fastrand::u8(0..16) {
                    0..=8 if waiting.len() < MAX_WAITING => {
                        let answer = client.join_queue(plot).await;
                        recorder.record(&answer);
                        let entry = &answer.data["joinQueue"];
                        match entry["status"].as_str() {
                            Some("WAITING") => {
                                seen.waited.fetch_add(1, Ordering::Relaxed);
                                waiting.extend(entry["id"].as_str().map(str::to_owned));
                            }
                            Some("PROMOTED") => {
                                seen.at_once.fetch_add(1, Ordering::Relaxed);
                                if let Some(hold) = entry["reservation"]["id"].as_str()
                                    && to_release(hold)
                                {
                                    recorder.record(&client.release(hold).await);
                                }
                            }
                            _ => {}
                        }
                    }
                    0..=11 => {
                        let answer = client.promoted_entries(PROMOTED_PAGE).await;
                        recorder.record(&answer);
                        let nodes = answer.data["queueEntries"]["nodes"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        for node in nodes {
                            waiting.retain(|entry| node["id"] != entry.as_str());
                            let hold = &node["reservation"];
                            if hold["status"] == "ACTIVE"
                                && let Some(id) = hold["id"].as_str()
                                && to_release(id)
                            {
                                let released = client.release(id).await;
                                recorder.record(&released);
                                if released.outcome == Outcome::Ok {
                                    seen.released_from_line.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    }
                    12 if !waiting.is_empty() => {
                        let entry = waiting.swap_remove(fastrand::usize(0..waiting.len()));
                        recorder.record(&client.leave_queue(&entry).await);
                    }
                    _ => {
                        let answer = client.line(plot).await;
                        recorder.record(&answer);
                        seen.check(&answer);
                    }
                }
            }
        }
    })
    .await;

    // Every contested plot's line once more, now that the agents stopped
    // (the worker may still be moving them).
    let mut waiting_now = 0;
    for plot in contested.iter() {
        let answer = target.clients[0].line(plot).await;
        seen.check(&answer);
        waiting_now += answer.data["property"]["queueLength"].as_u64().unwrap_or(0);
    }

    let mut failures = Vec::new();
    let failed = summary.count_outcome(Outcome::Error) + summary.count_outcome(Outcome::Transport);
    if failed > 0 {
        failures.push(format!(
            "queue: {failed} requests ended otherwise than the rules answer under contention \
             (see the table and its sample failures)"
        ));
    }
    let misnumbered = seen.misnumbered.load(Ordering::Relaxed);
    if misnumbered > 0 {
        let kept = seen.kept.lock().unwrap_or_else(PoisonError::into_inner);
        failures.push(format!(
            "queue: {misnumbered} line reads were not numbered 1..n, e.g. {}",
            kept.join("; ")
        ));
    }
    let (waited, at_once, released) = (
        seen.waited.load(Ordering::Relaxed),
        seen.at_once.load(Ordering::Relaxed),
        seen.released_from_line.load(Ordering::Relaxed),
    );
    let notes = vec![format!(
        "{n} agents on {} plots: {waited} joins waited in line, {at_once} took a free plot at once; \
         {released} holds from the line released by their agent; {} reads of lines and of own \
         entries; {waiting_now} still waiting at the end",
        contested.len(),
        summary.count(Op::Line, Outcome::Ok),
    )];
    let figures = vec![
        ("plots", contested.len().to_string()),
        ("waited", waited.to_string()),
        ("at_once", at_once.to_string()),
        ("released_from_line", released.to_string()),
        ("misnumbered", misnumbered.to_string()),
    ];
    Ok(RunReport {
        notes,
        failures,
        figures,
        ..RunReport::of(summary)
    })
}

#[cfg(test)]
mod tests {
    use super::to_release;

    #[test]
    fn about_half_the_holds_are_released_and_the_rest_lapse() {
        let released = (0..1000)
            .filter(|_| to_release(&uuid::Uuid::new_v4().to_string()))
            .count();
        assert!((400..600).contains(&released), "{released} of 1000");
        let id = uuid::Uuid::new_v4().to_string();
        assert_eq!(to_release(&id), to_release(&id));
    }
}
