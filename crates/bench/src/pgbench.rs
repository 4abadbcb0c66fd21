//! The pgbench side of the reserve benchmark: the helper tables its script
//! draws plots and agents from, and the script itself (`pgbench/reserve.sql`,
//! the server's reserve transaction statement for statement; a test below
//! fails when the domain's SQL changes and the script does not).

use std::path::Path;

use anyhow::Context as _;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// The pgbench script.
pub const SCRIPT: &str = include_str!("../pgbench/reserve.sql");

/// Makes `bench_plot` (every plot of the project, numbered in a random
/// order), `bench_plot_seq` to draw them once each, and `bench_agent` (the
/// workspace's agents, numbered from 1); writes the script to `script_out`.
pub async fn prepare(
    db: &DatabaseConnection,
    project_id: &str,
    agent_ids: &[String],
    script_out: &Path,
) -> anyhow::Result<()> {
    db.execute_unprepared(
        "DROP TABLE IF EXISTS bench_plot; DROP TABLE IF EXISTS bench_agent; \
         DROP SEQUENCE IF EXISTS bench_plot_seq; CREATE SEQUENCE bench_plot_seq",
    )
    .await?;
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "CREATE TABLE bench_plot AS SELECT row_number() OVER (ORDER BY random()) AS n, id AS property_id \
         FROM property WHERE project_id = $1::uuid",
        [project_id.to_owned().into()],
    ))
    .await?;
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "CREATE TABLE bench_agent AS SELECT a.n, a.id::uuid AS user_id \
         FROM unnest($1::text[]) WITH ORDINALITY AS a(id, n)",
        [format!("{{{}}}", agent_ids.join(",")).into()],
    ))
    .await?;
    db.execute_unprepared(
        "CREATE UNIQUE INDEX ON bench_plot (n); CREATE UNIQUE INDEX ON bench_agent (n)",
    )
    .await?;
    db.execute_unprepared("ANALYZE bench_plot").await?;
    db.execute_unprepared("ANALYZE bench_agent").await?;
    std::fs::write(script_out, SCRIPT)
        .with_context(|| format!("writing {}", script_out.display()))?;
    Ok(())
}

/// Draws plots from the first one again (after the plots were reset).
pub async fn restart(db: &DatabaseConnection) -> anyhow::Result<()> {
    db.execute_unprepared("ALTER SEQUENCE bench_plot_seq RESTART")
        .await?;
    Ok(())
}

/// Drops the helper tables.
pub async fn clean_up(db: &DatabaseConnection) -> anyhow::Result<()> {
    db.execute_unprepared(
        "DROP TABLE IF EXISTS bench_plot; DROP TABLE IF EXISTS bench_agent; \
         DROP SEQUENCE IF EXISTS bench_plot_seq",
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::SCRIPT;

    /// Whitespace-normalised, so that line breaks do not matter.
    fn squash(s: &str) -> String {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace("\\ ", "")
            .replace("( ", "(")
            .replace(" )", ")")
    }

    #[test]
    fn the_pgbench_script_runs_the_statements_the_domain_runs() {
        let domain = squash(include_str!("../../domain/src/reservations.rs"));
        let script = squash(SCRIPT);
        for (domain_part, script_part) in [
            (
                "SELECT p.project_id, p.status, p.reserved_until, u.active AND w.status = 'ACTIVE' AS caller_ok FROM property p, app_user u, workspace w WHERE p.id = $1 AND p.workspace_id = $2 AND u.id = $3 AND u.workspace_id = $2 AND w.id = $2 FOR UPDATE OF p\"",
                "FROM property p, app_user u, workspace w",
            ),
            (
                "u.workspace_id = $2 AND w.id = $2 FOR UPDATE OF p\"",
                "u.workspace_id = :ws::uuid AND w.id = :ws::uuid FOR UPDATE OF p \\gset",
            ),
            (
                "WITH t AS (SELECT clock_timestamp() AS now), created AS (INSERT INTO reservation (id, workspace_id, property_id, agent_id, status, created_at, expires_at)",
                "WITH t AS (SELECT clock_timestamp() AS now), created AS (INSERT INTO reservation (id, workspace_id, property_id, agent_id, status, created_at, expires_at)",
            ),
            (
                "'ACTIVE', t.now, t.now + make_interval(secs => $5) FROM t RETURNING *), held AS (UPDATE property SET status = 'RESERVED', reserved_by_id = created.agent_id, reserved_until = created.expires_at, updated_at = created.created_at FROM created WHERE property.id = created.property_id) SELECT * FROM created",
                "'ACTIVE', t.now, t.now + make_interval(secs => 86400) FROM t RETURNING *), held AS (UPDATE property SET status = 'RESERVED', reserved_by_id = created.agent_id, reserved_until = created.expires_at, updated_at = created.created_at FROM created WHERE property.id = created.property_id) SELECT * FROM created",
            ),
        ] {
            assert!(
                domain.contains(domain_part),
                "the domain's reserve SQL changed; update pgbench/reserve.sql to match: {domain_part}"
            );
            assert!(
                script.contains(script_part),
                "the script lacks: {script_part}"
            );
        }
        assert!(script.contains("BEGIN;") && script.contains("COMMIT;"));
    }
}
