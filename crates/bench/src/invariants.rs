//! The verdict after every run: the domain's own audit of every invariant,
//! plus counts of our own that do not trust it (no plot with two ACTIVE
//! holds, every RESERVED plot with exactly one, `availablePlots` as the server
//! answers it equal to a count over the base table, and as many reservations
//! in the database as the clients were told they got).

use chrono::{DateTime, Utc};
use holdfast_domain::audit;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::client::AgentClient;
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
               count(*) FILTER (WHERE status = 'AVAILABLE' OR (status = 'RESERVED' AND reserved_until <= now())) AS available, \
               count(*) FILTER (WHERE status = 'RESERVED' AND reserved_until > now()) AS reserved, \
               count(*) FILTER (WHERE status = 'SOLD') AS sold \
             FROM property WHERE project_id = $1::uuid",
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
