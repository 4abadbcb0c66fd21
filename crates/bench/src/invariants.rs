//! The verdict after every run: the domain's own audit of every invariant,
//! plus counts of our own that do not trust it (no plot with two ACTIVE
//! holds, every RESERVED plot with exactly one, `availablePlots` as the server
//! answers it equal to a count over the base table, and as many reservations
//! in the database as the clients were told they got); after the runs that
//! use the line behind held plots, that every line moved exactly once per
//! ended hold, and that a line as the server shows it is numbered 1..n.

use chrono::{DateTime, Utc};
use holdfast_domain::audit;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::client::{AgentClient, Answer};
use crate::outcome::Outcome;

/// What the clients saw, to hold the database to.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The database's clock when the run began.
    pub since: DateTime<Utc>,
    /// Reservations the clients were told they got.
    pub reserved: u64,
    /// Requests with no answer: one of them may have reserved without the
    /// client knowing, so the count can only be checked when this is 0.
    pub unanswered: u64,
}

/// How many times the counters are compared before a mismatch counts: a hold
/// that lapses between the two reads changes both counts at different instants.
const COUNTER_TRIES: u32 = 3;

/// Every broken invariant, one line each; empty when all hold.
pub async fn check(
    db: &DatabaseConnection,
    project_id: &str,
    probe: Option<&AgentClient>,
    seen: Option<&Seen>,
) -> anyhow::Result<Vec<String>> {
    let mut broken = Vec::new();
    for v in audit::audit(db).await? {
        broken.push(format!("audit: {}: {}", v.invariant, v.rows.join(", ")));
    }

    let doubled = count(
        db,
        "SELECT count(*) AS n FROM (SELECT property_id FROM reservation WHERE status = 'ACTIVE' \
         GROUP BY property_id HAVING count(*) > 1) d",
        vec![],
    )
    .await?;
    if doubled > 0 {
        broken.push(format!(
            "{doubled} properties have two or more ACTIVE reservations"
        ));
    }
    let unheld = count(
        db,
        "SELECT count(*) AS n FROM property p WHERE p.status = 'RESERVED' AND \
         (SELECT count(*) FROM reservation r WHERE r.property_id = p.id AND r.status = 'ACTIVE') <> 1",
        vec![],
    )
    .await?;
    if unheld > 0 {
        broken.push(format!(
            "{unheld} RESERVED properties do not have exactly one ACTIVE reservation"
        ));
    }

    if let Some(probe) = probe {
        let mut last = None;
        for _ in 0..COUNTER_TRIES {
            match compare_counters(db, project_id, probe).await? {
                None => {
                    last = None;
                    break;
                }
                Some(mismatch) => last = Some(mismatch),
            }
        }
        broken.extend(last);
    }

    if let Some(seen) = seen {
        let created = count(
            db,
            "SELECT count(*) AS n FROM reservation r JOIN property p ON p.id = r.property_id \
             WHERE p.project_id = $1::uuid AND r.created_at >= $2",
            vec![project_id.to_owned().into(), seen.since.into()],
        )
        .await?;
        if seen.unanswered == 0 && created != seen.reserved {
            broken.push(format!(
                "the clients were told of {} reservations, the database has {created}",
                seen.reserved
            ));
        }
    }
    Ok(broken)
}

/// After `launch`: every plot of the project RESERVED, by exactly one
/// reservation made since `since`, still ACTIVE, of the agent the clients
/// were told had it (`taken`: plot, agent). One line per kind of breach,
/// with a few of the plots.
pub async fn taken_once(
    db: &DatabaseConnection,
    project_id: &str,
    since: DateTime<Utc>,
    taken: &[(String, String)],
) -> anyhow::Result<Vec<String>> {
    let told: std::collections::HashMap<&str, &str> = taken
        .iter()
        .map(|(plot, agent)| (plot.as_str(), agent.as_str()))
        .collect();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT p.id::text AS plot, p.status, p.reserved_by_id::text AS holder, \
               count(r.id) AS holds, count(r.id) FILTER (WHERE r.status = 'ACTIVE') AS active, \
               min(r.agent_id::text) AS agent \
             FROM property p LEFT JOIN reservation r ON r.property_id = p.id AND r.created_at >= $2 \
             WHERE p.project_id = $1::uuid GROUP BY p.id, p.status, p.reserved_by_id",
            [project_id.to_owned().into(), since.into()],
        ))
        .await?;
    let mut breaches: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for row in &rows {
        let plot: String = row.try_get("", "plot")?;
        let status: String = row.try_get("", "status")?;
        let holder: Option<String> = row.try_get("", "holder")?;
        let holds: i64 = row.try_get("", "holds")?;
        let active: i64 = row.try_get("", "active")?;
        let agent: Option<String> = row.try_get("", "agent")?;
        let told_agent = told.get(plot.as_str()).copied();
        let breach = if holds != 1 {
            Some("plots taken other than once")
        } else if active != 1 || status != "RESERVED" || holder != agent {
            Some("plots whose one hold is not ACTIVE, or not the plot's holder")
        } else if told_agent != agent.as_deref() {
            Some("plots held by another agent than the clients were told")
        } else {
            None
        };
        if let Some(kind) = breach {
            breaches.entry(kind).or_default().push(format!(
                "{plot} ({status}, {holds} holds, {active} active, told {})",
                told_agent.unwrap_or("nobody")
            ));
        }
    }
    let mut broken: Vec<String> = breaches
        .into_iter()
        .map(|(kind, plots)| {
            format!(
                "launch: {} {kind}, e.g. {}",
                plots.len(),
                plots.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
            )
        })
        .collect();
    if taken.len() != rows.len() {
        broken.push(format!(
            "launch: the clients were told of {} holds on a project of {} plots",
            taken.len(),
            rows.len()
        ));
    }
    Ok(broken)
}

/// How the lines of a project moved, from the holds that ended since a moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineMoves {
    /// Holds released or expired since then (a sale closes a line instead).
    pub ended: u64,
    /// Those with somebody in line who could take the plot when they ended.
    pub with_line: u64,
    /// Holds begun from the line since then.
    pub promotions: u64,
    /// (what ended the hold: agent, manager, job, sweep, takeover; how many)
    /// over the holds that ended with somebody in line.
    pub moved_by: Vec<(String, u64)>,
}

/// Counts by name as a report says them: "agent 12, job 30" ("none" for none).
pub fn named_counts<N: std::fmt::Display>(pairs: &[(String, N)]) -> String {
    if pairs.is_empty() {
        return "none".to_owned();
    }
    pairs
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every line of the project moved exactly once per hold that ended since
/// `since`: each released or expired hold with somebody waiting (and not
/// passed over) when it ended handed the plot to exactly one entry, whose
/// hold began at that very moment; one with nobody waiting handed it to
/// nobody; and every hold begun from the line follows such an end. (A hold
/// a `joinQueue` took at once on a free plot is not a move of a line: its
/// entry never waited.) The counts, and one line per kind of breach.
pub async fn line_moved_once(
    db: &DatabaseConnection,
    project_id: &str,
    since: DateTime<Utc>,
) -> anyhow::Result<(LineMoves, Vec<String>)> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "WITH ended AS ( \
               SELECT h.id, h.property_id, h.ended_at, h.end_source, \
                 EXISTS (SELECT 1 FROM queue_entry q WHERE q.property_id = h.property_id \
                   AND q.created_at < h.ended_at AND (q.ended_at IS NULL OR q.ended_at >= h.ended_at) \
                   AND NOT (q.status = 'SKIPPED' AND q.ended_at = h.ended_at)) AS line, \
                 (SELECT count(*) FROM queue_entry q JOIN reservation r ON r.id = q.reservation_id \
                   WHERE q.property_id = h.property_id AND q.status = 'PROMOTED' \
                     AND q.created_at < q.ended_at AND q.ended_at = h.ended_at \
                     AND r.created_at = h.ended_at) AS moves \
               FROM reservation h JOIN property p ON p.id = h.property_id \
               WHERE p.project_id = $1::uuid AND h.ended_at >= $2 \
                 AND h.status IN ('RELEASED', 'EXPIRED')), \
             promoted AS ( \
               SELECT q.id, EXISTS (SELECT 1 FROM reservation h WHERE h.property_id = q.property_id \
                   AND h.ended_at = q.ended_at AND h.status IN ('RELEASED', 'EXPIRED')) AS follows \
               FROM queue_entry q JOIN property p ON p.id = q.property_id \
               WHERE p.project_id = $1::uuid AND q.status = 'PROMOTED' \
                 AND q.created_at < q.ended_at AND q.ended_at >= $2) \
             SELECT (SELECT count(*) FROM ended) AS ended, \
               (SELECT count(*) FROM ended WHERE line) AS with_line, \
               (SELECT count(*) FROM ended WHERE line AND moves = 0) AS missed, \
               (SELECT count(*) FROM ended WHERE moves > 1) AS twice, \
               (SELECT count(*) FROM ended WHERE NOT line AND moves > 0) AS unasked, \
               (SELECT count(*) FROM promoted) AS promotions, \
               (SELECT count(*) FROM promoted WHERE NOT follows) AS orphans, \
               (SELECT coalesce(jsonb_object_agg(source, n), '{}') FROM (SELECT \
                  coalesce(end_source, '?') AS source, count(*) AS n FROM ended WHERE line \
                  GROUP BY 1) s)::text AS moved_by",
            [project_id.to_owned().into(), since.into()],
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no line counts"))?;
    let n =
        |name: &str| -> anyhow::Result<u64> { Ok(u64::try_from(row.try_get::<i64>("", name)?)?) };
    let moved_by: std::collections::BTreeMap<String, u64> =
        serde_json::from_str(&row.try_get::<String>("", "moved_by")?)?;
    let moves = LineMoves {
        ended: n("ended")?,
        with_line: n("with_line")?,
        promotions: n("promotions")?,
        moved_by: moved_by.into_iter().collect(),
    };
    let mut broken = Vec::new();
    for (name, what) in [
        (
            "missed",
            "ended holds with somebody in line did not hand the plot on at the moment they ended",
        ),
        (
            "twice",
            "ended holds handed the plot to more than one entry",
        ),
        (
            "unasked",
            "ended holds with nobody in line still began a hold from the line",
        ),
        (
            "orphans",
            "holds begun from the line follow no released or expired hold of their plot",
        ),
    ] {
        let count = n(name)?;
        if count > 0 {
            broken.push(format!("line: {count} {what}"));
        }
    }
    Ok((moves, broken))
}

/// What is wrong with a plot's line as `AgentClient::line` answered it: its
/// positions are not 1, 2, ... n, first in line first (one statement reads
/// them, so they must be, however the line moves meanwhile); None when they are.
pub fn line_numbering(answer: &Answer) -> Option<String> {
    if answer.outcome != Outcome::Ok {
        return Some(format!(
            "a line could not be read over GraphQL: {}",
            answer.error.clone().unwrap_or_default()
        ));
    }
    let property = &answer.data["property"];
    let positions: Vec<i64> = property["queue"]["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .map(|n| n["position"].as_i64().unwrap_or(-1))
                .collect()
        })
        .unwrap_or_default();
    let dense = positions
        .iter()
        .enumerate()
        .all(|(i, &p)| p == i as i64 + 1);
    (!dense).then(|| {
        format!(
            "line of plot {}: positions {positions:?}, not 1..{}",
            property["id"].as_str().unwrap_or("?"),
            positions.len()
        )
    })
}

/// The project's counters over GraphQL against a count over the base table;
/// a description of the difference, if any.
async fn compare_counters(
    db: &DatabaseConnection,
    project_id: &str,
    probe: &AgentClient,
) -> anyhow::Result<Option<String>> {
    let answer = probe.counters(project_id).await;
    if answer.outcome != Outcome::Ok {
        return Ok(Some(format!(
            "the project's counters could not be read over GraphQL: {}",
            answer.error.unwrap_or_default()
        )));
    }
    let p = &answer.data["project"];
    let field = |name: &str| p[name].as_i64().unwrap_or(-1);
    let api = [
        field("totalPlots"),
        field("availablePlots"),
        field("reservedPlots"),
        field("soldPlots"),
    ];
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS total, \
               count(*) FILTER (WHERE status = 'AVAILABLE' OR (status = 'RESERVED' AND freed)) AS available, \
               count(*) FILTER (WHERE status = 'RESERVED' AND NOT freed) AS reserved, \
               count(*) FILTER (WHERE status = 'SOLD') AS sold \
             FROM property p CROSS JOIN LATERAL (SELECT reserved_until <= now() AND NOT EXISTS \
               (SELECT 1 FROM queue_entry e WHERE e.property_id = p.id AND e.status = 'WAITING') AS freed) f \
             WHERE project_id = $1::uuid",
            [project_id.to_owned().into()],
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no counts"))?;
    let sql = [
        row.try_get::<i64>("", "total")?,
        row.try_get::<i64>("", "available")?,
        row.try_get::<i64>("", "reserved")?,
        row.try_get::<i64>("", "sold")?,
    ];
    if api == sql && api[1] + api[2] + api[3] == api[0] {
        Ok(None)
    } else {
        Ok(Some(format!(
            "project counters (total, available, reserved, sold): GraphQL says {api:?}, \
             the property table says {sql:?}"
        )))
    }
}

/// The database's clock now.
pub async fn db_now(db: &DatabaseConnection) -> anyhow::Result<DateTime<Utc>> {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT clock_timestamp() AS now",
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no clock"))?;
    Ok(row.try_get("", "now")?)
}

async fn count(
    db: &DatabaseConnection,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> anyhow::Result<u64> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no count"))?;
    Ok(u64::try_from(row.try_get::<i64>("", "n")?)?)
}
