//! The progress line: once a second on stderr, what the run has done so far,
//! so that a stuck or failing run shows itself before it ends.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::outcome::Outcome;
use crate::stats::Recorder;

/// Prints the progress of `recorder` every second until `stop` turns true.
pub fn spawn(
    scenario: String,
    recorder: Arc<Recorder>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        let tty = std::io::stderr().is_terminal();
        let mut last_total = 0u64;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
            let total = recorder.total();
            let line = line(
                &scenario,
                started.elapsed(),
                total,
                total - last_total,
                &recorder,
            );
            last_total = total;
            let mut err = std::io::stderr().lock();
            // On a terminal the line rewrites itself; in a log, one per second.
            let _ = if tty {
                write!(err, "\r{line}\x1b[K")
            } else {
                writeln!(err, "{line}")
            };
            let _ = err.flush();
        }
        if tty {
            let _ = writeln!(std::io::stderr());
        }
    })
}

fn line(scenario: &str, elapsed: Duration, total: u64, last_second: u64, r: &Recorder) -> String {
    let mut out = format!(
        "[{scenario} {:>4.0}s] {total} requests, {last_second}/s, reserved {}",
        elapsed.as_secs_f64(),
        r.reserved()
    );
    for (outcome, count) in r.counts() {
        if outcome != Outcome::Ok && count > 0 {
            let _ = write!(out, ", {outcome} {count}");
        }
    }
    out
}
