//! The pgbench side of the reserve benchmark: the helper tables its script
//! draws plots and agents from, and the script itself (`pgbench/reserve.sql`,
//! the server's reserve as it sends it; a test below fails when the domain's
//! call changes and the script does not).

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
        assert!(
            domain.contains(r#""reserve($1, $2, $3, make_interval(secs => $4), $5)""#)
                && domain.contains("let txn = db.begin()"),
            "the domain's reserve changed; update pgbench/reserve.sql to match"
        );
        assert!(script.contains("BEGIN; SELECT rules.reserve(:ws::uuid,"));
        assert!(script.contains("make_interval(secs => 86400), 0)::text AS answer; COMMIT;"));
    }
}
