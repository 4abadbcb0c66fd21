//! `launch`: launch day. Every agent (1,000 in `just bench`) has opened its
//! connection and waits at one barrier; the barrier opens the project (200
//! plots in `just bench`) to all of them at once. Each agent then reserves a
//! plot at random among those it has not yet seen taken, and stops when it
//! holds one or when every plot is taken. What the agents have seen taken is
//! shared, as the live board shows it to every browser (an agent learns a plot
//! is gone from its own PROPERTY_UNAVAILABLE or from another agent's success).
//!
//! Expected: every plot taken exactly once (the caller checks the holds the
//! clients were told of against the database), and no outcome but success
//! and PROPERTY_UNAVAILABLE: anything else (BUSY, a limit, an error, a
//! timeout) fails the scenario. Measured: the latency of every reserve (p99
//! and max), how long after the barrier the last plot was taken, and how long
//! each agent waited from the barrier to its final answer.
//!
//! Client side: one connection pool per agent, as one browser each, so 1,000
//! agents are 1,000 connections, opened (with an authenticated request) before
//! the barrier so that the race is about reserving, not TCP handshakes. That
//! takes a file descriptor per agent in this process and in the server: the
//! run refuses to start when the open-files limit cannot hold them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use anyhow::bail;
use hdrhistogram::Histogram;
use tokio::sync::Barrier;

use super::{Budget, RunReport, Target, drive};
use crate::outcome::{Op, Outcome};

/// How long a launch may take at most, unless told otherwise.
pub const LONGEST: Duration = Duration::from_secs(120);
/// How long an agent waits for the others at the barrier.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(60);
/// File descriptors this process needs besides one per agent (PostgreSQL,
/// the runtime, stdio, ...).
const SPARE_FILES: u64 = 64;

/// The plots as the board shows them: taken or not.
struct Board {
    taken: Vec<AtomicBool>,
}

impl Board {
    fn new(plots: usize) -> Self {
        Self {
            taken: (0..plots).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// A plot not seen taken yet, at random; None once every plot is taken.
    fn pick(&self) -> Option<usize> {
        let n = self.taken.len();
        if n == 0 {
            return None;
        }
        let start = fastrand::usize(0..n);
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| !self.taken[i].load(Ordering::Relaxed))
    }

    fn take(&self, i: usize) {
        self.taken[i].store(true, Ordering::Relaxed);
    }
}

/// What the agents saw, besides the latencies the recorder keeps.
#[derive(Default)]
struct Seen {
    /// (plot index, agent id, when) for every success.
    wins: Mutex<Vec<(usize, String, Instant)>>,
    /// Each agent's wait from the barrier to its last answer, in µs.
    waits: Mutex<Vec<u64>>,
    warm_up_failed: AtomicU64,
    /// An agent stopped because the time or request budget was spent.
    out_of_budget: AtomicBool,
}

pub async fn run(target: &Target, budget: Budget) -> anyhow::Result<RunReport> {
    let plots = Arc::clone(&target.plots);
    let n = target.clients.len();
    if plots.is_empty() || n < plots.len() {
        bail!(
            "launch needs a project of AVAILABLE plots and at least as many agents as plots \
             (each agent takes one): {n} agents, {} plots",
            plots.len()
        );
    }
    if let Some(limit) = open_files_limit()
        && limit < n as u64 + SPARE_FILES
    {
        bail!(
            "launch with {n} agents needs {} open files in this process, its limit is {limit} \
             (raise it with `ulimit -n`; scripts/bench.sh raises it to the hard limit)",
            n as u64 + SPARE_FILES
        );
    }
    let budget = Arc::new(budget);
    let barrier = Arc::new(Barrier::new(n));
    let board = Arc::new(Board::new(plots.len()));
    let seen = Arc::new(Seen::default());
    let opened: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let summary = drive("launch", &target.clients, |_, client, recorder| {
        let (budget, barrier, board, seen, opened, plots) = (
            Arc::clone(&budget),
            Arc::clone(&barrier),
            Arc::clone(&board),
            Arc::clone(&seen),
            Arc::clone(&opened),
            Arc::clone(&plots),
        );
        async move {
            // Not recorded: only the launch is measured.
            if client.warm_up().await.outcome != Outcome::Ok {
                seen.warm_up_failed.fetch_add(1, Ordering::Relaxed);
            }
            // Bounded: an agent that never arrives must not hang the others.
            let _ = tokio::time::timeout(BARRIER_TIMEOUT, barrier.wait()).await;
            let start = *opened.get_or_init(Instant::now);
            loop {
                if !budget.take() {
                    seen.out_of_budget.store(true, Ordering::Relaxed);
                    break;
                }
                let Some(i) = board.pick() else { break };
                let answer = client.reserve(&plots[i]).await;
                recorder.record(&answer);
                match answer.outcome {
                    Outcome::Ok => {
                        board.take(i);
                        lock(&seen.wins).push((i, client.id.clone(), Instant::now()));
                        break;
                    }
                    Outcome::Unavailable => board.take(i),
                    // Anything else fails the scenario; this agent stops.
                    _ => break,
                }
            }
            let waited = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
            lock(&seen.waits).push(waited);
        }
    })
    .await;

    let wins = std::mem::take(&mut *lock(&seen.wins));
    let waits = std::mem::take(&mut *lock(&seen.waits));
    let reserved = summary.count(Op::Reserve, Outcome::Ok);
    let unavailable = summary.count(Op::Reserve, Outcome::Unavailable);
    let other = summary.total.count - reserved - unavailable;
    let warm_up_failed = seen.warm_up_failed.load(Ordering::Relaxed);
    let mut failures = Vec::new();
    if other > 0 {
        failures.push(format!(
            "launch: {other} reserves ended otherwise than reserved or PROPERTY_UNAVAILABLE \
             (see the table and its sample failures)"
        ));
    }
    let mut won = vec![0u32; plots.len()];
    for (i, _, _) in &wins {
        won[*i] += 1;
    }
    let twice = won.iter().filter(|&&w| w > 1).count();
    let untaken = won.iter().filter(|&&w| w == 0).count();
    if twice > 0 {
        failures.push(format!(
            "launch: the clients were told {twice} plots were theirs more than once"
        ));
    }
    if untaken > 0 {
        failures.push(format!(
            "launch: {untaken} of {} plots were not taken when the agents stopped",
            plots.len()
        ));
    }
    if warm_up_failed > 0 {
        failures.push(format!(
            "launch: {warm_up_failed} agents could not open their connection before the barrier \
             (file descriptors? the server's accept queue?)"
        ));
    }
    let sold_out = opened
        .get()
        .zip(wins.iter().map(|(_, _, at)| *at).max())
        .map(|(opened, last)| last.saturating_duration_since(*opened));
    let wait = quantiles(&waits);
    let mut notes = vec![format!(
        "{n} agents on {} plots: {} took one, the last {} after the barrier; \
         an agent's wait from the barrier to its plot or to sold out: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        plots.len(),
        wins.len(),
        sold_out.map_or_else(|| "n/a".to_owned(), |d| format!("{:.3} s", d.as_secs_f64())),
        wait.0,
        wait.1,
        wait.2,
    )];
    if seen.out_of_budget.load(Ordering::Relaxed) {
        notes.push("the time or request budget ran out before every agent stopped".to_owned());
    }
    let figures = vec![
        ("agents", n.to_string()),
        ("plots", plots.len().to_string()),
        ("taken", wins.len().to_string()),
        ("other", other.to_string()),
        (
            "sold_out_s",
            sold_out.map_or_else(|| "n/a".to_owned(), |d| format!("{:.3}", d.as_secs_f64())),
        ),
        ("wait_p99_ms", format!("{:.1}", wait.1)),
        ("warm_up_failed", warm_up_failed.to_string()),
    ];
    let taken = wins
        .into_iter()
        .map(|(i, agent, _)| (plots[i].clone(), agent))
        .collect();
    Ok(RunReport {
        notes,
        failures,
        figures,
        taken,
        ..RunReport::of(summary)
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// p50, p99 and max of `micros`, in milliseconds.
fn quantiles(micros: &[u64]) -> (f64, f64, f64) {
    let Ok(mut h) = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3) else {
        return (0.0, 0.0, 0.0);
    };
    for &v in micros {
        let _ = h.record(v.clamp(1, 3_600_000_000));
    }
    let ms = |v: u64| v as f64 / 1000.0;
    (
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
    )
}

/// This process's soft limit on open files, from /proc (None elsewhere or
/// when unlimited).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_hands_out_untaken_plots_until_none_is_left() {
        let board = Board::new(3);
        let mut seen = Vec::new();
        while let Some(i) = board.pick() {
            assert!(!seen.contains(&i));
            seen.push(i);
            board.take(i);
        }
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 2]);
        assert_eq!(Board::new(0).pick(), None);
    }

    #[test]
    fn the_open_files_limit_is_read_where_proc_has_it() {
        if std::path::Path::new("/proc/self/limits").exists() {
            assert!(open_files_limit().is_some_and(|n| n > 0));
        }
    }
}
