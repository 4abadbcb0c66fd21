//! Checks every invariant of the hold rules in the database. Tests run it after
//! each scenario; `holdfast-server audit` runs it for operators.

use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Statement};

use crate::error::DomainResult;

/// One broken invariant, naming the rows that break it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    pub rows: Vec<String>,
}

/// Each invariant, and the query that lists the rows breaking it.
const CHECKS: &[(&str, &str)] = &[
    (
        "a RESERVED property has exactly one ACTIVE reservation, by its holder, ending at its reserved_until",
        "SELECT 'property ' || p.id::text AS row FROM property p \
         WHERE p.status = 'RESERVED' AND ( \
           (SELECT count(*) FROM reservation r WHERE r.property_id = p.id AND r.status = 'ACTIVE') <> 1 \
           OR NOT EXISTS (SELECT 1 FROM reservation r WHERE r.property_id = p.id AND r.status = 'ACTIVE' \
             AND r.agent_id = p.reserved_by_id AND r.expires_at = p.reserved_until))",
    ),
    (
        "an ACTIVE reservation's property is RESERVED",
        "SELECT 'reservation ' || r.id::text AS row FROM reservation r JOIN property p ON p.id = r.property_id \
         WHERE r.status = 'ACTIVE' AND p.status <> 'RESERVED'",
    ),
    (
        "a SOLD property has exactly one CONVERTED reservation",
        "SELECT 'property ' || p.id::text AS row FROM property p WHERE p.status = 'SOLD' \
         AND (SELECT count(*) FROM reservation r WHERE r.property_id = p.id AND r.status = 'CONVERTED') <> 1",
    ),
    (
        "a CONVERTED reservation's property is SOLD",
        "SELECT 'reservation ' || r.id::text AS row FROM reservation r JOIN property p ON p.id = r.property_id \
         WHERE r.status = 'CONVERTED' AND p.status <> 'SOLD'",
    ),
    (
        "a property's holds never overlap in time",
        "SELECT 'reservation ' || a.id::text || ' and ' || b.id::text AS row \
         FROM reservation a JOIN reservation b ON a.property_id = b.property_id AND a.id < b.id \
         WHERE tstzrange(a.created_at, LEAST(a.expires_at, COALESCE(a.ended_at, a.expires_at))) \
            && tstzrange(b.created_at, LEAST(b.expires_at, COALESCE(b.ended_at, b.expires_at)))",
    ),
    (
        "an ended reservation records when it ended, after it began",
        "SELECT 'reservation ' || r.id::text AS row FROM reservation r \
         WHERE r.status <> 'ACTIVE' AND (r.ended_at IS NULL OR r.ended_at < r.created_at)",
    ),
    (
        "an EXPIRED reservation ended no earlier than its expiry, by a job, the sweep or a takeover",
        "SELECT 'reservation ' || r.id::text AS row FROM reservation r WHERE r.status = 'EXPIRED' \
         AND (r.ended_at < r.expires_at OR r.end_source NOT IN ('job', 'sweep', 'takeover'))",
    ),
    (
        "a reservation was warned of its end at most at its current version",
        "SELECT 'reservation ' || r.id::text AS row FROM reservation r \
         WHERE r.warned_version > r.version",
    ),
    (
        "nobody waits in line for a plot that is not held, nor for a plot they hold",
        "SELECT 'queue entry ' || e.id::text AS row FROM queue_entry e JOIN property p ON p.id = e.property_id \
         WHERE e.status = 'WAITING' AND (p.status <> 'RESERVED' OR p.reserved_by_id = e.agent_id)",
    ),
    (
        "a PROMOTED entry names the hold it became: its agent's, on its plot, made from it when the entry ended",
        "SELECT 'queue entry ' || e.id::text AS row FROM queue_entry e \
         LEFT JOIN reservation r ON r.id = e.reservation_id \
         WHERE e.status = 'PROMOTED' AND (r.id IS NULL OR r.agent_id <> e.agent_id \
           OR r.property_id <> e.property_id OR r.queue_entry_id IS DISTINCT FROM e.id \
           OR r.created_at <> e.ended_at)",
    ),
    (
        "a hold from the line began when the hold before it ended",
        "SELECT 'queue entry ' || e.id::text AS row FROM queue_entry e \
         WHERE e.status = 'PROMOTED' AND e.created_at < e.ended_at AND NOT EXISTS ( \
           SELECT 1 FROM reservation b WHERE b.property_id = e.property_id AND b.ended_at = e.ended_at \
             AND b.id <> e.reservation_id)",
    ),
    (
        "the line is first come, first served: nobody ahead of a promoted entry still waited when it was promoted",
        "SELECT 'queue entry ' || e.id::text || ' ahead of ' || x.id::text AS row \
         FROM queue_entry e JOIN queue_entry x ON x.property_id = e.property_id \
           AND (x.created_at, x.id) < (e.created_at, e.id) \
         WHERE e.status = 'PROMOTED' AND x.created_at < e.ended_at \
           AND (x.ended_at IS NULL OR x.ended_at > e.ended_at)",
    ),
    (
        "a WITHDRAWN property is neither held nor waited for",
        "SELECT 'property ' || p.id::text AS row FROM property p WHERE p.status = 'WITHDRAWN' \
         AND (p.reserved_by_id IS NOT NULL \
           OR EXISTS (SELECT 1 FROM reservation r WHERE r.property_id = p.id AND r.status = 'ACTIVE') \
           OR EXISTS (SELECT 1 FROM queue_entry e WHERE e.property_id = p.id AND e.status = 'WAITING'))",
    ),
    (
        "a hold keeps the price its property had when it began (checkable for holds begun since the price last changed)",
        "SELECT 'reservation ' || r.id::text AS row FROM reservation r JOIN property p ON p.id = r.property_id \
         WHERE p.priced_at <= r.created_at AND r.price_at_reservation IS DISTINCT FROM p.price",
    ),
    (
        "a queue entry, its property and its agent are in one workspace",
        "SELECT 'queue entry ' || e.id::text AS row FROM queue_entry e \
         JOIN property p ON p.id = e.property_id JOIN app_user u ON u.id = e.agent_id \
         WHERE p.workspace_id <> e.workspace_id OR u.workspace_id <> e.workspace_id",
    ),
    (
        "a reservation, its property and its agent are in one workspace",
        "SELECT 'reservation ' || r.id::text AS row FROM reservation r \
         JOIN property p ON p.id = r.property_id JOIN app_user u ON u.id = r.agent_id \
         WHERE p.workspace_id <> r.workspace_id OR u.workspace_id <> r.workspace_id",
    ),
    (
        "a project's tally (the sums of its shards) is its plots counted by status",
        "SELECT 'project ' || pr.id::text AS row FROM project pr \
         LEFT JOIN (SELECT project_id, sum(plots) AS plots, sum(reserved) AS reserved, \
                           sum(sold) AS sold, sum(withdrawn) AS withdrawn \
                    FROM plot_tally GROUP BY project_id) t ON t.project_id = pr.id \
         LEFT JOIN (SELECT project_id, count(*) AS plots, \
                           count(*) FILTER (WHERE status = 'RESERVED') AS reserved, \
                           count(*) FILTER (WHERE status = 'SOLD') AS sold, \
                           count(*) FILTER (WHERE status = 'WITHDRAWN') AS withdrawn \
                    FROM property GROUP BY project_id) p ON p.project_id = pr.id \
         WHERE (coalesce(t.plots, 0), coalesce(t.reserved, 0), coalesce(t.sold, 0), coalesce(t.withdrawn, 0)) \
               <> (coalesce(p.plots, 0), coalesce(p.reserved, 0), coalesce(p.sold, 0), coalesce(p.withdrawn, 0))",
    ),
    (
        "every workspace has an ADMIN (its last active admin may be deactivated by an operator, never demoted)",
        "SELECT 'workspace ' || w.id::text AS row FROM workspace w \
         WHERE NOT EXISTS (SELECT 1 FROM app_user u WHERE u.workspace_id = w.id AND u.role = 'ADMIN')",
    ),
];

/// Every invariant that does not hold, with up to 20 offending rows each.
pub async fn audit(db: &impl ConnectionTrait) -> DomainResult<Vec<Violation>> {
    #[derive(FromQueryResult)]
    struct Row {
        row: String,
    }
    let mut violations = Vec::new();
    for (invariant, sql) in CHECKS {
        let rows = Row::find_by_statement(Statement::from_string(
            DbBackend::Postgres,
            format!("{sql} LIMIT 20"),
        ))
        .all(db)
        .await?;
        if !rows.is_empty() {
            violations.push(Violation {
                invariant,
                rows: rows.into_iter().map(|r| r.row).collect(),
            });
        }
    }
    Ok(violations)
}
