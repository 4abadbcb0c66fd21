//! The load scenarios, and the closed loop they share: each agent is one
//! task sending one request after the other until the run's budget (a
//! duration, a count, or both) is spent.

pub mod hot;
pub mod launch;
pub mod mixed;
pub mod queue;
pub mod reads;
pub mod spread;
pub mod story;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::client::AgentClient;
use crate::progress;
use crate::stats::{Recorder, Summary};

/// No run goes on longer than this, whatever it was asked: every loop of the
/// load generator is bounded in time as well as in count.
pub const MAX_RUN: Duration = Duration::from_secs(15 * 60);

/// Which load to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Every agent reserves random plots of the large project, each plot once.
    Spread,
    /// Every agent reserves the same plot at the same instant, once.
    Hot,
    /// Reads, reserves, releases and converts in the proportions of a sales day.
    Mixed,
    /// The original load test: 50 users for 30 s, racing for a handful of plots.
    #[value(name = "story-2.5")]
    Story25,
    /// Launch day: every agent at one instant on a small project, each until
    /// it holds a plot or every plot is taken.
    Launch,
    /// Reads of the large project (its counters, a page of its plots) by a
    /// few readers, while the agents reserve as in spread.
    Reads,
    /// The line behind held plots: the agents join, leave and read the lines
    /// of a few plots while holds lapse and are released.
    Queue,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Spread => "spread",
            Scenario::Hot => "hot",
            Scenario::Mixed => "mixed",
            Scenario::Story25 => "story-2.5",
            Scenario::Launch => "launch",
            Scenario::Reads => "reads",
            Scenario::Queue => "queue",
        }
    }
}

/// How much a run may do: it stops at whichever comes first.
#[derive(Debug)]
pub struct Budget {
    deadline: Instant,
    remaining: AtomicU64,
}

impl Budget {
    /// `duration` (at most `MAX_RUN`) and `count` requests; either may be open.
    pub fn new(duration: Option<Duration>, count: Option<u64>) -> Self {
        let duration = duration.unwrap_or(MAX_RUN).min(MAX_RUN);
        Self {
            deadline: Instant::now() + duration,
            remaining: AtomicU64::new(count.unwrap_or(u64::MAX)),
        }
    }

    /// Takes one request from the budget; false once it is spent.
    pub fn take(&self) -> bool {
        Instant::now() < self.deadline
            && self
                .remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
    }
}

/// Everything a scenario runs against.
#[derive(Debug, Clone)]
pub struct Target {
    /// One client per agent.
    pub clients: Vec<AgentClient>,
    /// Agents who only read (`reads`), besides `clients`; empty otherwise.
    pub readers: Vec<AgentClient>,
    pub project_id: String,
    /// Plots of the project that were AVAILABLE when the run started, in
    /// random order.
    pub plots: Arc<Vec<String>>,
}

/// What a run did, and what the scenario itself found wrong.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub summary: Summary,
    /// Notes for the reader (a pool of plots used up, ...).
    pub notes: Vec<String>,
    /// Broken expectations of the scenario itself (hot: not exactly one winner).
    pub failures: Vec<String>,
    /// Figures of the scenario's own, for the results file (name, value).
    pub figures: Vec<(&'static str, String)>,
    /// (plot, agent) for every hold the clients were told they got, when the
    /// scenario keeps them (`launch`, for its check against the database).
    pub taken: Vec<(String, String)>,
}

impl RunReport {
    /// A report of `summary` alone, with nothing else to say.
    pub fn of(summary: Summary) -> Self {
        Self {
            summary,
            notes: Vec::new(),
            failures: Vec::new(),
            figures: Vec::new(),
            taken: Vec::new(),
        }
    }
}

/// Runs `agent` once per client, concurrently, with a progress line, and
/// returns the summary once every agent is done.
pub async fn drive<F, Fut>(scenario: &str, clients: &[AgentClient], agent: F) -> Summary
where
    F: Fn(usize, AgentClient, Arc<Recorder>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let recorder = Arc::new(Recorder::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let progress = progress::spawn(scenario.to_owned(), Arc::clone(&recorder), stop_rx);
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(agent(i, c.clone(), Arc::clone(&recorder))))
        .collect();
    for task in tasks {
        // A panicking agent loses its own requests only; the summary says
        // what the others did, and the invariant check still runs.
        if let Err(e) = task.await {
            eprintln!("an agent task failed: {e}");
        }
    }
    let elapsed = started.elapsed();
    let _ = stop_tx.send(true);
    let _ = progress.await;
    recorder.summary(scenario, elapsed)
}

/// Runs `scenario` against `target`.
pub async fn run(
    scenario: Scenario,
    target: &Target,
    duration: Option<Duration>,
    count: Option<u64>,
) -> anyhow::Result<RunReport> {
    match scenario {
        Scenario::Spread => Ok(spread::run(target, Budget::new(duration, count)).await),
        Scenario::Hot => hot::run(target).await,
        Scenario::Mixed => Ok(mixed::run(target, Budget::new(duration, count)).await),
        Scenario::Story25 => Ok(story::run(
            target,
            Budget::new(duration.or(Some(story::DURATION)), count),
        )
        .await),
        Scenario::Launch => {
            launch::run(
                target,
                Budget::new(duration.or(Some(launch::LONGEST)), count),
            )
            .await
        }
        Scenario::Reads => reads::run(target, Budget::new(duration, count)).await,
        Scenario::Queue => queue::run(target, Budget::new(duration, count)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_stops_at_its_count() {
        let b = Budget::new(Some(Duration::from_secs(60)), Some(3));
        assert!(b.take() && b.take() && b.take());
        assert!(!b.take());
    }

    #[test]
    fn a_budget_stops_at_its_deadline() {
        let b = Budget::new(Some(Duration::ZERO), None);
        assert!(!b.take());
    }
}
