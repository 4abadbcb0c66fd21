//! Latency histograms and counts per (operation, outcome), shared by the
//! agents of a run, and the report printed at its end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::client::Answer;
use crate::outcome::{Op, Outcome, label};

/// Latencies are kept in microseconds, up to the request timeout.
const MAX_MICROS: u64 = 60_000_000;
/// Error codes and transport failures kept as samples for the report.
const MAX_SAMPLES: usize = 5;

/// What every agent of a run records into.
pub struct Recorder {
    histograms: Mutex<BTreeMap<(Op, Outcome), Histogram<u64>>>,
    samples: Mutex<Vec<String>>,
    /// Counts per outcome, read once a second by the progress line without
    /// taking the lock the agents record under.
    counts: [AtomicU64; Outcome::ALL.len()],
    reserved: AtomicU64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            histograms: Mutex::new(BTreeMap::new()),
            samples: Mutex::new(Vec::new()),
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            reserved: AtomicU64::new(0),
        }
    }

    pub fn record(&self, answer: &Answer) {
        let index = Outcome::ALL
            .iter()
            .position(|o| *o == answer.outcome)
            .unwrap_or(0);
        self.counts[index].fetch_add(1, Ordering::Relaxed);
        if answer.op == Op::Reserve && answer.outcome == Outcome::Ok {
            self.reserved.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(answer.latency.as_micros())
            .unwrap_or(MAX_MICROS)
            .clamp(1, MAX_MICROS);
        {
            let mut histograms = self
                .histograms
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let histogram = histograms
                .entry((answer.op, answer.outcome))
                .or_insert_with(new_histogram);
            // The value is clamped into the histogram's range above.
            let _ = histogram.record(micros);
        }
        if answer.outcome.is_failure()
            && let Some(error) = &answer.error
        {
            let mut samples = self
                .samples
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if samples.len() < MAX_SAMPLES {
                samples.push(format!("{}: {error}", answer.op.as_str()));
            }
        }
    }

    /// (outcome, count) so far, for the progress line.
    pub fn counts(&self) -> Vec<(Outcome, u64)> {
        Outcome::ALL
            .iter()
            .zip(&self.counts)
            .map(|(o, c)| (*o, c.load(Ordering::Relaxed)))
            .collect()
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    pub fn reserved(&self) -> u64 {
        self.reserved.load(Ordering::Relaxed)
    }

    /// The run's report, over `elapsed`.
    pub fn summary(&self, scenario: &str, elapsed: Duration) -> Summary {
        let histograms = self
            .histograms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut rows = Vec::new();
        let mut all = new_histogram();
        for ((op, outcome), h) in histograms.iter() {
            let _ = all.add(h);
            rows.push(Row::of(label(*op, *outcome), *op, *outcome, h));
        }
        let total = Row::of("all".to_owned(), Op::Read, Outcome::Ok, &all);
        Summary {
            scenario: scenario.to_owned(),
            elapsed,
            rows,
            total,
            histograms: histograms.clone(),
            samples: self
                .samples
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    // 3 significant digits over 1 µs .. 60 s: a few hundred KiB per pair.
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant, valid histogram bounds")
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Row {
    pub label: String,
    pub op: Op,
    pub outcome: Outcome,
    pub count: u64,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Row {
    fn of(label: String, op: Op, outcome: Outcome, h: &Histogram<u64>) -> Row {
        let q = |q: f64| Duration::from_micros(h.value_at_quantile(q));
        Row {
            label,
            op,
            outcome,
            count: h.len(),
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            max: Duration::from_micros(h.max()),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub scenario: String,
    pub elapsed: Duration,
    pub rows: Vec<Row>,
    pub total: Row,
    pub samples: Vec<String>,
    /// The latencies behind the rows, for `merged`.
    histograms: BTreeMap<(Op, Outcome), Histogram<u64>>,
}

impl Summary {
    /// One row over every (operation, outcome) pair that `which` keeps:
    /// the latency of all reads of a kind, say, whatever their outcome.
    pub fn merged(&self, label: &str, which: impl Fn(Op, Outcome) -> bool) -> Row {
        let mut merged = new_histogram();
        for ((op, outcome), h) in &self.histograms {
            if which(*op, *outcome) {
                let _ = merged.add(h);
            }
        }
        let (op, outcome) = self
            .histograms
            .keys()
            .copied()
            .find(|(op, outcome)| which(*op, *outcome))
            .unwrap_or((Op::Read, Outcome::Ok));
        Row::of(label.to_owned(), op, outcome, &merged)
    }

    /// Requests of `op` that ended with `outcome`.
    pub fn count(&self, op: Op, outcome: Outcome) -> u64 {
        self.rows
            .iter()
            .filter(|r| r.op == op && r.outcome == outcome)
            .map(|r| r.count)
            .sum()
    }

    /// Requests that ended with `outcome`, whatever the operation.
    pub fn count_outcome(&self, outcome: Outcome) -> u64 {
        self.rows
            .iter()
            .filter(|r| r.outcome == outcome)
            .map(|r| r.count)
            .sum()
    }

    /// Per second, over the run.
    pub fn rate(&self, count: u64) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { count as f64 / secs } else { 0.0 }
    }

    /// Successful reservations per second.
    pub fn reserved_per_sec(&self) -> f64 {
        self.rate(self.count(Op::Reserve, Outcome::Ok))
    }

    /// The report as a table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "scenario {}: {} requests in {:.2} s",
            self.scenario,
            self.total.count,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "  {:<22} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9}",
            "outcome", "count", "per s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        for row in self.rows.iter().chain(std::iter::once(&self.total)) {
            let _ = writeln!(
                out,
                "  {:<22} {:>9} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                row.label,
                row.count,
                self.rate(row.count),
                ms(row.p50),
                ms(row.p90),
                ms(row.p99),
                ms(row.max)
            );
        }
        for sample in &self.samples {
            let _ = writeln!(out, "  sample failure: {sample}");
        }
        out
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn answer(op: Op, outcome: Outcome, ms: u64) -> Answer {
        Answer {
            op,
            outcome,
            latency: Duration::from_millis(ms),
            data: Value::Null,
            error: (outcome != Outcome::Ok).then(|| "X".to_owned()),
        }
    }

    #[test]
    fn a_summary_counts_each_outcome_and_orders_its_percentiles() {
        let r = Recorder::new();
        for i in 1..=100 {
            r.record(&answer(Op::Reserve, Outcome::Ok, i));
        }
        r.record(&answer(Op::Reserve, Outcome::Unavailable, 5));
        r.record(&answer(Op::Read, Outcome::Transport, 7));
        let s = r.summary("t", Duration::from_secs(2));
        assert_eq!(s.count(Op::Reserve, Outcome::Ok), 100);
        assert_eq!(s.count_outcome(Outcome::Unavailable), 1);
        assert_eq!(s.total.count, 102);
        assert_eq!(r.reserved(), 100);
        assert!((s.reserved_per_sec() - 50.0).abs() < 1e-9);
        let row = &s.rows[0];
        assert!(row.p50 <= row.p90 && row.p90 <= row.p99 && row.p99 <= row.max);
        assert_eq!(s.samples.len(), 1);
        assert!(s.render().contains("reserved"));
        let reserves = s.merged("reserves", |op, _| op == Op::Reserve);
        assert_eq!(reserves.count, 101);
        assert!(reserves.max >= Duration::from_millis(100));
        assert_eq!(s.merged("none", |_, _| false).count, 0);
    }
}
