//! The release lag: reserve many plots on a server with a short hold time,
//! wait for the worker to release them, and read `ended_at - expires_at` of
//! each from PostgreSQL (the database's clock on both ends).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::client::{self, AgentClient};
use crate::scenarios::{Budget, Target, drive};
use crate::stats::Summary;

/// How long after the last expiry the holds may take to be released before
/// the measurement gives up (and reports the ones still ACTIVE).
const GRACE: Duration = Duration::from_secs(60);

/// The lags, in seconds, of every measured hold.
#[derive(Debug, Clone)]
pub struct Lags {
    pub summary: Summary,
    pub count: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    /// (end source, count): who released them.
    pub sources: Vec<(String, i64)>,
    pub still_active: i64,
}

/// Reserves `count` plots through `target`'s agents, waits until the holds
/// are released (bounded), and measures their lag.
pub async fn measure(
    db: &DatabaseConnection,
    target: &Target,
    count: usize,
) -> anyhow::Result<Lags> {
    ensure!(
        target.plots.len() >= count,
        "{count} holds asked, {} plots available",
        target.plots.len()
    );
    let ids = Arc::new(std::sync::Mutex::new(Vec::with_capacity(count)));
    let cursor = Arc::new(AtomicUsize::new(0));
    let budget = Arc::new(Budget::new(
        Some(Duration::from_secs(120)),
        Some(count as u64),
    ));
    let plots = Arc::clone(&target.plots);
    let summary = drive("lag", &target.clients, |_, c: AgentClient, recorder| {
        let (ids, cursor, budget, plots) = (
            Arc::clone(&ids),
            Arc::clone(&cursor),
            Arc::clone(&budget),
            Arc::clone(&plots),
        );
        async move {
            while budget.take() {
                let Some(plot) = plots.get(cursor.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                let answer = c.reserve(plot).await;
                recorder.record(&answer);
                if let Some(id) = client::reservation_id(&answer) {
                    ids.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(id);
                }
            }
        }
    })
    .await;
    let ids: Vec<String> = std::mem::take(
        &mut *ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    if ids.is_empty() {
        bail!("no reservation was made: {}", summary.render());
    }
    let ids_array = format!("{{{}}}", ids.join(","));

    let last_expiry: Option<chrono::DateTime<chrono::Utc>> = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT max(expires_at) AS last FROM reservation WHERE id = ANY($1::uuid[])",
            [ids_array.clone().into()],
        ))
        .await?
        .map(|r| r.try_get("", "last"))
        .transpose()?
        .flatten();
    let wait_until = match last_expiry {
        Some(last) => {
            let ahead = (last - chrono::Utc::now()).to_std().unwrap_or_default();
            Instant::now() + ahead + GRACE
        }
        None => Instant::now() + GRACE,
    };
    eprintln!(
        "lag: {} holds made; waiting for the worker to release them",
        ids.len()
    );
    while Instant::now() < wait_until && active(db, &ids_array).await? > 0 {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT extract(epoch FROM ended_at - expires_at)::float8 AS lag \
             FROM reservation WHERE id = ANY($1::uuid[]) AND status = 'EXPIRED' ORDER BY 1",
            [ids_array.clone().into()],
        ))
        .await?;
    let lags = rows
        .iter()
        .map(|r| r.try_get::<f64>("", "lag"))
        .collect::<Result<Vec<_>, _>>()?;
    let sources = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT coalesce(end_source, status) AS source, count(*) AS n \
             FROM reservation WHERE id = ANY($1::uuid[]) GROUP BY 1 ORDER BY 1",
            [ids_array.clone().into()],
        ))
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<String>("", "source")?,
                r.try_get::<i64>("", "n")?,
            ))
        })
        .collect::<Result<Vec<_>, sea_orm::DbErr>>()?;
    Ok(Lags {
        summary,
        count: lags.len(),
        p50: quantile(&lags, 0.50),
        p99: quantile(&lags, 0.99),
        max: lags.last().copied().unwrap_or(f64::NAN),
        sources,
        still_active: active(db, &ids_array).await?,
    })
}

async fn active(db: &DatabaseConnection, ids_array: &str) -> anyhow::Result<i64> {
    Ok(db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM reservation WHERE id = ANY($1::uuid[]) AND status = 'ACTIVE'",
            [ids_array.to_owned().into()],
        ))
        .await?
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0))
}

/// The nearest-rank quantile of sorted values.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
