//! The sweep benchmark: `reservations::sweep` (what the worker runs, batch by
//! batch) over 100,000 lapsed holds, against the plainest SQL that does the
//! same change, a batched UPDATE of the same rows with no locking clause.
//! Both start from the same rows, re-created, vacuumed and checkpointed,
//! and each runs twice.

use std::time::{Duration, Instant};

use anyhow::ensure;
use holdfast_domain::{Policy, reservations};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::setup;

/// The rows both runs end: made once, re-created before each run.
const LAPSED_TABLE: &str = "bench_lapsed";

/// The baseline: one autocommitted statement per batch that ends the due
/// reservations and frees their plots, with nothing returned to the client.
const RAW_BATCH: &str = "WITH due AS ( \
       SELECT id FROM reservation WHERE status = 'ACTIVE' AND expires_at <= now() LIMIT $1), \
     ended AS ( \
       UPDATE reservation r SET status = 'EXPIRED', ended_at = now(), end_source = 'sweep' \
       FROM due WHERE r.id = due.id RETURNING r.property_id) \
     UPDATE property p SET status = 'AVAILABLE', reserved_by_id = NULL, reserved_until = NULL, \
       updated_at = now() \
     FROM ended WHERE p.id = ended.property_id";

/// One timed run.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    pub released: u64,
    pub elapsed: Duration,
}

impl Timed {
    pub fn rate(&self) -> f64 {
        self.released as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Both runs over `count` lapsed holds of the project, `batch_size` per
/// transaction, in the order domain, raw, raw, domain (so that neither side
/// always runs first, or in the same moment of a shared machine's load);
/// each side's better run: (domain sweep, raw update).
pub async fn compare(
    db: &DatabaseConnection,
    project_id: &str,
    count: u64,
    batch_size: u32,
) -> anyhow::Result<(Timed, Timed)> {
    make_lapsed(db, project_id, count).await?;
    let mut domain: Option<Timed> = None;
    let mut raw: Option<Timed> = None;
    for use_domain in [true, false, false, true] {
        restore_lapsed(db, project_id).await?;
        let timed = if use_domain {
            time_domain(db, batch_size).await?
        } else {
            time_raw(db, count, batch_size).await?
        };
        ensure!(
            timed.released == count,
            "the {} released {} of {count} lapsed holds",
            if use_domain { "sweep" } else { "raw update" },
            timed.released
        );
        eprintln!(
            "  {}: {:.0} holds/s",
            if use_domain {
                "reservations::sweep"
            } else {
                "raw batched UPDATE"
            },
            timed.rate()
        );
        let best = if use_domain { &mut domain } else { &mut raw };
        if best.is_none_or(|b| timed.elapsed < b.elapsed) {
            *best = Some(timed);
        }
    }
    match (domain, raw) {
        (Some(domain), Some(raw)) => Ok((domain, raw)),
        _ => anyhow::bail!("a side of the sweep comparison did not run"),
    }
}

async fn time_domain(db: &DatabaseConnection, batch_size: u32) -> anyhow::Result<Timed> {
    let started = Instant::now();
    let report = reservations::sweep(db, &Policy::default(), batch_size, |_| {}).await?;
    Ok(Timed {
        released: report.released,
        elapsed: started.elapsed(),
    })
}

async fn time_raw(db: &DatabaseConnection, count: u64, batch_size: u32) -> anyhow::Result<Timed> {
    let started = Instant::now();
    let mut released = 0u64;
    // Bounded: each batch ends at least one row, or the loop stops.
    for _ in 0..=count {
        let done = db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                RAW_BATCH,
                [i64::from(batch_size).into()],
            ))
            .await?
            .rows_affected();
        released += done;
        if done < u64::from(batch_size) {
            break;
        }
    }
    Ok(Timed {
        released,
        elapsed: started.elapsed(),
    })
}

/// Picks `count` plots of the project and an agent for each, with a hold
/// that ended between one and two hours ago.
async fn make_lapsed(db: &DatabaseConnection, project_id: &str, count: u64) -> anyhow::Result<()> {
    db.execute_unprepared(&format!("DROP TABLE IF EXISTS {LAPSED_TABLE}"))
        .await?;
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "CREATE TABLE {LAPSED_TABLE} AS \
             WITH plots AS ( \
               SELECT id, workspace_id, row_number() OVER (ORDER BY random()) AS n \
               FROM property WHERE project_id = $1::uuid LIMIT $2), \
             agents AS ( \
               SELECT id, row_number() OVER (ORDER BY id) - 1 AS n, count(*) OVER () AS total \
               FROM app_user WHERE workspace_id = (SELECT workspace_id FROM project WHERE id = $1::uuid) \
                 AND role = 'SALES_AGENT') \
             SELECT p.id AS property_id, p.workspace_id, a.id AS agent_id, \
               now() - interval '3 hours' + (p.n * interval '10 ms') AS created_at, \
               now() - interval '2 hours' + (p.n * interval '10 ms') AS expires_at \
             FROM plots p JOIN agents a ON a.n = p.n % a.total"
        ),
        [project_id.to_owned().into(), i64::try_from(count)?.into()],
    ))
    .await?;
    let made = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT count(*) AS n FROM {LAPSED_TABLE}"),
        ))
        .await?
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0);
    ensure!(
        u64::try_from(made)? == count,
        "the project has room for {made} lapsed holds, {count} asked (seed more plots, and agents)"
    );
    Ok(())
}

/// Puts the project back to the lapsed state: every plot AVAILABLE and its
/// reservations gone, then the lapsed holds inserted as ACTIVE reservations
/// of RESERVED plots; vacuumed and checkpointed, so that each timed run
/// starts from the same clean tables and an empty write-ahead backlog.
async fn restore_lapsed(db: &DatabaseConnection, project_id: &str) -> anyhow::Result<()> {
    setup::reset_project(db, project_id).await?;
    let bulk = setup::bulk(db, project_id).await?;
    bulk.txn().execute_unprepared(&format!(
        "INSERT INTO reservation (id, workspace_id, property_id, agent_id, status, created_at, expires_at) \
         SELECT gen_random_uuid(), workspace_id, property_id, agent_id, 'ACTIVE', created_at, expires_at \
         FROM {LAPSED_TABLE}"
    ))
    .await?;
    bulk.txn()
        .execute_unprepared(&format!(
            "UPDATE property p SET status = 'RESERVED', reserved_by_id = l.agent_id, \
           reserved_until = l.expires_at FROM {LAPSED_TABLE} l WHERE p.id = l.property_id"
        ))
        .await?;
    bulk.commit().await?;
    setup::vacuum(db).await?;
    db.execute_unprepared("CHECKPOINT").await?;
    Ok(())
}

/// Drops the helper table.
pub async fn clean_up(db: &DatabaseConnection) -> anyhow::Result<()> {
    db.execute_unprepared(&format!("DROP TABLE IF EXISTS {LAPSED_TABLE}"))
        .await?;
    Ok(())
}
