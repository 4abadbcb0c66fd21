//! Promotions: how soon a line moves once the hold ahead of it lapses. Over
//! GraphQL, as agents do it, each of many plots is reserved by one agent and
//! joined by `line` others (WAITING at positions 1..line). The release jobs
//! the server schedules end each hold when it lapses, and the worker hands
//! the plot to the first in line, whose new hold lapses in turn after the
//! worker's hold time, until the line is empty. Then, from PostgreSQL (the
//! database's clock on both ends), each promotion's delay: the new hold's
//! `created_at` (the moment the old one ended, in the same transaction)
//! minus the old hold's `expires_at`.
//!
//! As for the release lag, the holds should lapse once the setup is done,
//! at the rate they were made: give the server a hold time longer than the
//! setup takes, and the worker a short one (`just bench`: the setup's
//! estimate and 5 s). Holds that lapse while the setup still sends its
//! requests are counted and reported: their promotions compete with that
//! load for the same CPUs.
//!
//! Checked: every line moved exactly once per ended hold
//! (`invariants::line_moved_once`), every place in line became a hold (none
//! skipped, none left waiting), and the usual invariants.

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
/// How long each place in line may take to move, beyond the hold time,
/// before the measurement gives up (and reports the entries still waiting).
const GRACE_PER_MOVE: Duration = Duration::from_secs(30);

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
    /// p99 per place in line (1: the first to move), in seconds.
    pub p99_by_place: Vec<(i64, f64)>,
    /// (what ended the hold before, count) over every promotion.
    pub sources: Vec<(String, i64)>,
    pub moves: LineMoves,
    /// Entries of the measured plots still WAITING, or SKIPPED, at the end.
    pub still_waiting: i64,
    pub skipped: i64,
    /// The setup's holds that lapsed before the setup was done.
    pub lapsed_during_setup: i64,
}

/// Sets up `count` plots of `target` with a hold and a line of `line`,
/// waits (bounded) until every line has emptied, and measures the
/// promotions. Returns the figures and every broken expectation.
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

    // Each place in line moves one hold time after the one before it (at
    // most): wait for the last, bounded.
    let (last_expiry, hold_time, lapsed_during_setup) =
        setup_holds(db, &plots_array, since, setup_end).await?;
    let ahead = (last_expiry - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    let wait_until = Instant::now() + ahead + (hold_time + GRACE_PER_MOVE) * line as u32;
    eprintln!(
        "promotions: {} plots held with a line of {line} (hold time {:.1} s); waiting for the lines to empty",
        lined.len(),
        hold_time.as_secs_f64()
    );
    let mut reported = Instant::now();
    loop {
        let waiting = entries(db, &plots_array, "WAITING").await?;
        if waiting == 0 || Instant::now() >= wait_until {
            break;
        }
        if reported.elapsed() >= Duration::from_secs(5) {
            eprintln!("promotions: {waiting} places in line still waiting");
            reported = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Each promotion, with the hold that ended before it and its place.
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT extract(epoch FROM r.created_at - h.expires_at)::float8 AS delay, \
               h.status, coalesce(h.end_source, h.status) AS source, \
               row_number() OVER (PARTITION BY q.property_id ORDER BY q.ended_at) AS place \
             FROM queue_entry q JOIN reservation r ON r.id = q.reservation_id \
             JOIN reservation h ON h.property_id = q.property_id AND h.ended_at = q.ended_at \
               AND h.id <> r.id \
             WHERE q.property_id = ANY($1::uuid[]) AND q.status = 'PROMOTED' \
               AND q.created_at < q.ended_at AND q.created_at >= $2",
            [plots_array.clone().into(), since.into()],
        ))
        .await?;
    let mut delays = Vec::with_capacity(rows.len());
    let mut by_place: std::collections::BTreeMap<i64, Vec<f64>> = Default::default();
    let mut sources: std::collections::BTreeMap<String, i64> = Default::default();
    for row in &rows {
        let status: String = row.try_get("", "status")?;
        *sources.entry(row.try_get("", "source")?).or_default() += 1;
        // A delay after a lapse; a hold released by a person did not lapse.
        if status == "EXPIRED" {
            let delay: f64 = row.try_get("", "delay")?;
            delays.push(delay);
            by_place
                .entry(row.try_get("", "place")?)
                .or_default()
                .push(delay);
        }
    }
    delays.sort_by(f64::total_cmp);
    let p99_by_place = by_place
        .into_iter()
        .map(|(place, mut d)| {
            d.sort_by(f64::total_cmp);
            (place, quantile(&d, 0.99))
        })
        .collect();

    let (moves, mut broken) = invariants::line_moved_once(db, &target.project_id, since).await?;
    broken.extend(invariants::check(db, &target.project_id, None, None).await?);
    let still_waiting = entries(db, &plots_array, "WAITING").await?;
    let skipped = entries(db, &plots_array, "SKIPPED").await?;
    let expected = lined.len() * line;
    if delays.len() != expected {
        broken.push(format!(
            "promotions: {} plots with a line of {line} should make {expected} promotions after a \
             lapse; {} were made",
            lined.len(),
            delays.len()
        ));
    }
    if still_waiting > 0 {
        broken.push(format!(
            "promotions: {still_waiting} places in line still waited well after the holds \
             ahead of them lapsed"
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
            p99_by_place,
            sources: sources.into_iter().collect(),
            moves,
            still_waiting,
            skipped,
            lapsed_during_setup,
        },
        broken,
    ))
}

/// Of the holds the setup made on `plots` (not those from the line): when
/// the last lapses, their hold time, and how many lapsed before `setup_end`.
async fn setup_holds(
    db: &DatabaseConnection,
    plots_array: &str,
    since: chrono::DateTime<chrono::Utc>,
    setup_end: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<(chrono::DateTime<chrono::Utc>, Duration, i64)> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT max(expires_at) AS last, \
               extract(epoch FROM max(expires_at - created_at))::float8 AS hold, \
               count(*) FILTER (WHERE expires_at < $3) AS early \
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
    let last: chrono::DateTime<chrono::Utc> = row.try_get("", "last")?;
    let hold: f64 = row.try_get("", "hold")?;
    Ok((
        last,
        Duration::from_secs_f64(hold.max(0.0)),
        row.try_get("", "early")?,
    ))
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
