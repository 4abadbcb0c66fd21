//! Promotions: how soon a line moves once the hold ahead of it lapses. Over
//! GraphQL, as agents do it, each of many plots is reserved by one agent and
//! joined by `line` others (WAITING at positions 1..line). The release job
//! the server schedules ends each hold when it lapses, and the worker hands
//! the plot to the first in line in that same transaction. Then, from
//! PostgreSQL (the database's clock on both ends), each promotion's delay:
//! the new hold's `created_at` (the moment the old one ended) minus the old
//! hold's `expires_at`.
//!
//! As for the release lag, the holds should lapse once the setup is done,
//! at the rate they were made: give the server a hold time longer than the
//! setup takes (`just bench` estimates it). Holds that lapse while the setup
//! still sends its requests are counted and reported: their promotions
//! compete with that load for the same CPUs. The holds the worker begins
//! last the worker's hold time; when that is short, they lapse and the
//! lines move on, and only the first move of each line is measured.
//!
//! Checked: each lapsed hold handed its plot to exactly one entry, every
//! line moved exactly once per ended hold (`invariants::line_moved_once`,
//! over every move, the later ones included), a sample of the lines reads
//! 1..n over GraphQL after the move, nobody was passed over, and the usual
//! invariants.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::client::{self, AgentClient};
use crate::invariants::{self, LineMoves};
use crate::lag::quantile;
use crate::scenarios::{Budget, Target, drive};
use crate::stats::Summary;

/// How long the setup may take at most.
const SETUP_LONGEST: Duration = Duration::from_secs(600);
/// How long after the last expiry the holds may take to be ended before
/// the measurement gives up (and reports the ones still ACTIVE).
const GRACE: Duration = Duration::from_secs(60);
/// Lines read over GraphQL after the moves, at most.
const LINES_READ: usize = 100;

/// What was measured.
#[derive(Debug, Clone)]
pub struct Promotions {
    /// The setup's requests.
    pub summary: Summary,
    /// Plots with a hold and a full line of `line` after the setup.
    pub plots: usize,
    pub line: usize,
    /// Promotions measured (after a lapsed hold), and their delays in seconds.
    pub count: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    /// (what ended the hold before, count) over the measured promotions.
    pub sources: Vec<(String, i64)>,
    /// Every move of the project's lines since the setup began.
    pub moves: LineMoves,
    /// The setup's holds still ACTIVE at the end (lapsed, never ended).
    pub still_active: i64,
    /// Places in line of the measured plots passed over (SKIPPED).
    pub skipped: i64,
    /// The setup's holds that lapsed before the setup was done.
    pub lapsed_during_setup: i64,
}

/// Sets up `count` plots of `target` with a hold and a line of `line`,
/// waits (bounded) until every hold has lapsed and been ended, and measures
/// the promotions. Returns the figures and every broken expectation.
pub async fn measure(
    db: &DatabaseConnection,
    target: &Target,
    count: usize,
    line: usize,
) -> anyhow::Result<(Promotions, Vec<String>)> {
    let agents = target.clients.len();
    ensure!(
        target.plots.len() >= count,
        "{count} plots asked, {} available",
        target.plots.len()
    );
    ensure!(
        line >= 1 && agents > line,
        "a line of {line} needs at least {} agents (a holder and {line} others), {agents} given",
        line + 1
    );
    let since = invariants::db_now(db).await?;
    let lined = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let misplaced = Arc::new(AtomicUsize::new(0));
    let cursor = Arc::new(AtomicUsize::new(0));
    let budget = Arc::new(Budget::new(Some(SETUP_LONGEST), Some(count as u64)));
    let clients: Arc<Vec<AgentClient>> = Arc::new(target.clients.clone());
    let plots = Arc::clone(&target.plots);
    let summary = drive(
        "promotions setup",
        &target.clients,
        |i, holder, recorder| {
            let (lined, misplaced, cursor, budget, clients, plots) = (
                Arc::clone(&lined),
                Arc::clone(&misplaced),
                Arc::clone(&cursor),
                Arc::clone(&budget),
                Arc::clone(&clients),
                Arc::clone(&plots),
            );
            async move {
                while budget.take() {
                    let Some(plot) = plots.get(cursor.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    let answer = holder.reserve(plot).await;
                    recorder.record(&answer);
                    if client::reservation_id(&answer).is_none() {
                        continue;
                    }
                    // The next agents after the holder wait, in this order.
                    let mut in_place = true;
                    for place in 1..=line {
                        let joiner = &clients[(i + place) % clients.len()];
                        let answer = joiner.join_queue(plot).await;
                        recorder.record(&answer);
                        let entry = &answer.data["joinQueue"];
                        in_place &= entry["status"] == "WAITING"
                            && entry["position"].as_u64() == Some(place as u64);
                    }
                    if in_place {
                        lined
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(plot.clone());
                    } else {
                        misplaced.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        },
    )
    .await;
    let setup_end = invariants::db_now(db).await?;
    let lined: Vec<String> =
        std::mem::take(&mut *lined.lock().unwrap_or_else(PoisonError::into_inner));
    if lined.is_empty() {
        bail!("no plot was set up with a line: {}", summary.render());
    }
    let plots_array = format!("{{{}}}", lined.join(","));

    let (last_expiry, lapsed_during_setup) =
        setup_holds(db, &plots_array, since, setup_end).await?;
    let ahead = (last_expiry - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    let wait_until = Instant::now() + ahead + GRACE;
    eprintln!(
        "promotions: {} plots held with a line of {line}; the last hold lapses in {:.0} s",
        lined.len(),
        ahead.as_secs_f64()
    );
    let mut reported = Instant::now();
    loop {
        let active = setup_holds_active(db, &plots_array, since).await?;
        if active == 0 || Instant::now() >= wait_until {
            break;
        }
        if reported.elapsed() >= Duration::from_secs(5) {
            eprintln!("promotions: {active} holds not ended yet");
            reported = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Each setup hold that ended, with the promotion it made.
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT extract(epoch FROM r.created_at - h.expires_at)::float8 AS delay, \
               h.status, coalesce(h.end_source, h.status) AS source \
             FROM reservation h \
             JOIN queue_entry q ON q.property_id = h.property_id AND q.ended_at = h.ended_at \
               AND q.status = 'PROMOTED' AND q.created_at < q.ended_at \
             JOIN reservation r ON r.id = q.reservation_id \
             WHERE h.property_id = ANY($1::uuid[]) AND h.created_at >= $2 \
               AND h.queue_entry_id IS NULL",
            [plots_array.clone().into(), since.into()],
        ))
        .await?;
    let mut delays = Vec::with_capacity(rows.len());
    let mut sources: std::collections::BTreeMap<String, i64> = Default::default();
    for row in &rows {
        *sources.entry(row.try_get("", "source")?).or_default() += 1;
        // A delay after a lapse; a hold released by a person did not lapse.
        if row.try_get::<String>("", "status")? == "EXPIRED" {
            delays.push(row.try_get::<f64>("", "delay")?);
        }
    }
    delays.sort_by(f64::total_cmp);

    let (moves, mut broken) = invariants::line_moved_once(db, &target.project_id, since).await?;
    broken.extend(invariants::check(db, &target.project_id, None, None).await?);
    for plot in lined.iter().take(LINES_READ) {
        broken.extend(invariants::line_numbering(
            &target.clients[0].line(plot).await,
        ));
    }
    let still_active = setup_holds_active(db, &plots_array, since).await?;
    let skipped = entries(db, &plots_array, "SKIPPED").await?;
    if delays.len() != lined.len() {
        broken.push(format!(
            "promotions: {} lapsed holds with a line should each have handed their plot on; \
             {} did",
            lined.len(),
            delays.len()
        ));
    }
    if still_active > 0 {
        broken.push(format!(
            "promotions: {still_active} holds were still ACTIVE well after they lapsed"
        ));
    }
    if skipped > 0 {
        broken.push(format!(
            "promotions: {skipped} places in line were passed over (SKIPPED): run the worker \
             with HOLDFAST_MAX_ACTIVE_PER_AGENT=0, as the measurement gives each agent many holds"
        ));
    }
    let misplaced = misplaced.load(Ordering::Relaxed);
    if misplaced > 0 {
        broken.push(format!(
            "promotions: {misplaced} plots were not held with a line of {line} in order after \
             the setup (see the setup's table)"
        ));
    }
    Ok((
        Promotions {
            summary,
            plots: lined.len(),
            line,
            count: delays.len(),
            p50: quantile(&delays, 0.50),
            p99: quantile(&delays, 0.99),
            max: delays.last().copied().unwrap_or(f64::NAN),
            sources: sources.into_iter().collect(),
            moves,
            still_active,
            skipped,
            lapsed_during_setup,
        },
        broken,
    ))
}

/// Of the holds the setup made on `plots` (not those from the line): when
/// the last lapses, and how many lapsed before `setup_end`.
async fn setup_holds(
    db: &DatabaseConnection,
    plots_array: &str,
    since: chrono::DateTime<chrono::Utc>,
    setup_end: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<(chrono::DateTime<chrono::Utc>, i64)> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT max(expires_at) AS last, count(*) FILTER (WHERE expires_at < $3) AS early \
             FROM reservation WHERE property_id = ANY($1::uuid[]) AND created_at >= $2 \
               AND queue_entry_id IS NULL",
            [
                plots_array.to_owned().into(),
                since.into(),
                setup_end.into(),
            ],
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no holds"))?;
    Ok((row.try_get("", "last")?, row.try_get("", "early")?))
}

/// How many of the holds the setup made on `plots` are still ACTIVE.
async fn setup_holds_active(
    db: &DatabaseConnection,
    plots_array: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<i64> {
    Ok(db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM reservation WHERE property_id = ANY($1::uuid[]) \
               AND created_at >= $2 AND queue_entry_id IS NULL AND status = 'ACTIVE'",
            [plots_array.to_owned().into(), since.into()],
        ))
        .await?
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0))
}

/// Entries of `plots` with `status`.
async fn entries(db: &DatabaseConnection, plots_array: &str, status: &str) -> anyhow::Result<i64> {
    Ok(db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM queue_entry WHERE property_id = ANY($1::uuid[]) AND status = $2",
            [plots_array.to_owned().into(), status.to_owned().into()],
        ))
        .await?
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0))
}
