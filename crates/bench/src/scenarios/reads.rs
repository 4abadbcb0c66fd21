//! `reads`: the large project read while it is being reserved. The agents
//! reserve exactly as in `spread` (16 in `just bench`), and meanwhile a few
//! readers (4) each read, one request after the other with a pause between,
//! as a board refreshing: the project's four counters (`totalPlots
//! availablePlots reservedPlots soldPlots`) and a page of its plots
//! (`properties(first: 50)`), in turn. Measured: the latency of the reads,
//! together and per kind. Every read must succeed.
//!
//! The pause keeps the readers' own load about the same whatever a read
//! costs, so the figure is the latency of a read under the reserve load,
//! not under a flood of reads; with reads of 200 ms, four readers make about
//! 13 reads a second, with reads of 5 ms about 38.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use futures::future::Either;

use super::spread::{Cursor, reserve_loop};
use super::{Budget, RunReport, Target, drive};
use crate::outcome::{Op, Outcome};

/// The page of plots a reader asks for.
pub const PAGE: u32 = 50;
/// A reader's pause between two reads.
pub const PAUSE: Duration = Duration::from_millis(100);

fn is_read(op: Op) -> bool {
    matches!(op, Op::Counts | Op::Page)
}

pub async fn run(target: &Target, budget: Budget) -> anyhow::Result<RunReport> {
    if target.readers.is_empty() {
        bail!("reads needs readers (--readers) besides the reserving agents");
    }
    let budget = Arc::new(budget);
    let cursor = Arc::new(Cursor::new(Arc::clone(&target.plots)));
    let reserving = target.clients.len();
    let everyone: Vec<_> = target
        .clients
        .iter()
        .chain(&target.readers)
        .cloned()
        .collect();
    let project = target.project_id.clone();
    let summary = drive("reads", &everyone, |i, client, recorder| {
        let budget = Arc::clone(&budget);
        if i < reserving {
            Either::Left(reserve_loop(client, budget, Arc::clone(&cursor), recorder))
        } else {
            let project = project.clone();
            Either::Right(async move {
                // Readers start at different kinds, so both are read all along.
                let mut counts = i % 2 == 0;
                while budget.take() {
                    let answer = if counts {
                        client.counts(&project).await
                    } else {
                        client.plots_page(&project, PAGE).await
                    };
                    recorder.record(&answer);
                    counts = !counts;
                    tokio::time::sleep(PAUSE).await;
                }
            })
        }
    })
    .await;

    let reads = summary.merged("reads", |op, _| is_read(op));
    let counts = summary.merged("counts", |op, _| op == Op::Counts);
    let page = summary.merged("page", |op, _| op == Op::Page);
    let failed =
        reads.count - summary.count(Op::Counts, Outcome::Ok) - summary.count(Op::Page, Outcome::Ok);
    let mut failures = Vec::new();
    if failed > 0 {
        failures.push(format!(
            "reads: {failed} of {} reads did not succeed (see the table and its sample failures)",
            reads.count
        ));
    }
    if reads.count == 0 {
        failures.push("reads: no read was made".to_owned());
    }
    let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1e3);
    let mut notes = vec![format!(
        "{reserving} agents reserving, {} readers: {} reads, p50 {} ms, p99 {} ms, max {} ms \
         (counts p99 {} ms, page of {PAGE} p99 {} ms)",
        target.readers.len(),
        reads.count,
        ms(reads.p50),
        ms(reads.p99),
        ms(reads.max),
        ms(counts.p99),
        ms(page.p99),
    )];
    notes.extend(cursor.note());
    let figures = vec![
        ("readers", target.readers.len().to_string()),
        ("reads", reads.count.to_string()),
        ("read_p50_ms", ms(reads.p50)),
        ("read_p99_ms", ms(reads.p99)),
        ("read_max_ms", ms(reads.max)),
        ("counts_p99_ms", ms(counts.p99)),
        ("page_p99_ms", ms(page.p99)),
        ("read_failed", failed.to_string()),
    ];
    Ok(RunReport {
        notes,
        failures,
        figures,
        ..RunReport::of(summary)
    })
}
