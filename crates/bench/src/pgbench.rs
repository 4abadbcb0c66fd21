//! The pgbench side of the reserve benchmark: the helper tables and function
//! its scripts draw on, and the scripts themselves, one `.sql` file each under
//! `crates/bench/pgbench/`: `reserve-one-statement.sql`, the best one-statement
//! SQL for reserving a free plot (the limit of the reserve ratio), and
//! `reserve-transaction.sql`, the server's reserve transaction statement for
//! statement (a test below fails when the domain's SQL changes and that
//! script does not). `scripts/bench.sh` hands the files to pgbench as they
//! are; `statement` turns one into plain SQL for the tests.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// The limit: one statement, one round trip.
pub const ONE_STATEMENT_SCRIPT: &str = include_str!("../pgbench/reserve-one-statement.sql");
/// The server's transaction, for continuity with the earlier figures.
pub const TRANSACTION_SCRIPT: &str = include_str!("../pgbench/reserve-transaction.sql");

/// The count of the one-statement script, in a function of its own: a
/// VOLATILE function's query takes a fresh snapshot, so the count made after
/// the agent's lock was granted sees the holds of the reserves it waited for
/// (the script's header says why a count inside the statement would not).
/// The same condition as the domain's `count_active_holds`.
const ACTIVE_HOLDS_FUNCTION: &str = "CREATE OR REPLACE FUNCTION bench_active_holds(agent uuid) \
     RETURNS bigint LANGUAGE sql VOLATILE AS $$ \
     SELECT count(*) FROM reservation \
     WHERE agent_id = agent AND status = 'ACTIVE' AND expires_at > clock_timestamp() $$";

/// Makes `bench_plot` (every plot of the project, numbered in a random
/// order), `bench_plot_seq` to draw them once each, `bench_agent` (the
/// workspace's agents, numbered from 1) and `bench_active_holds`.
pub async fn prepare(
    db: &DatabaseConnection,
    project_id: &str,
    agent_ids: &[String],
) -> anyhow::Result<()> {
    db.execute_unprepared(
        "DROP TABLE IF EXISTS bench_plot; DROP TABLE IF EXISTS bench_agent; \
         DROP SEQUENCE IF EXISTS bench_plot_seq; CREATE SEQUENCE bench_plot_seq",
    )
    .await?;
    db.execute_unprepared(ACTIVE_HOLDS_FUNCTION).await?;
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
    Ok(())
}

/// Draws plots from the first one again (after the plots were reset).
pub async fn restart(db: &DatabaseConnection) -> anyhow::Result<()> {
    db.execute_unprepared("ALTER SEQUENCE bench_plot_seq RESTART")
        .await?;
    Ok(())
}

/// Drops the helper tables and function.
pub async fn clean_up(db: &DatabaseConnection) -> anyhow::Result<()> {
    db.execute_unprepared(
        "DROP TABLE IF EXISTS bench_plot; DROP TABLE IF EXISTS bench_agent; \
         DROP SEQUENCE IF EXISTS bench_plot_seq; DROP FUNCTION IF EXISTS bench_active_holds(uuid)",
    )
    .await?;
    Ok(())
}

/// The SQL of a pgbench script as pgbench would run it, for a test: its
/// meta-command lines (`\set ...`) dropped, and each `:name` of `variables`
/// replaced by its value as a quoted literal, which PostgreSQL types from its
/// context as it types pgbench's untyped parameters (`-M prepared`). Like
/// pgbench, it leaves a `:name` it was not given alone (so `::uuid` stays a
/// cast). Only for scripts of one SQL command.
pub fn statement(script: &str, variables: &[(&str, String)]) -> String {
    let mut sql = String::new();
    for line in script.lines().filter(|l| !l.trim_start().starts_with('\\')) {
        sql.push_str(line);
        sql.push('\n');
    }
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql.as_str();
    while let Some(at) = rest.find(':') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(cast) = after.strip_prefix(':') {
            out.push_str("::");
            rest = cast;
            continue;
        }
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        match variables.iter().find(|(name, _)| *name == &after[..len]) {
            Some((_, value)) => {
                out.push('\'');
                out.push_str(&value.replace('\'', "''"));
                out.push('\'');
                rest = &after[len..];
            }
            None => {
                out.push(':');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.trim_end().trim_end_matches(';').to_owned()
}

#[cfg(test)]
mod tests {
    use super::{ONE_STATEMENT_SCRIPT, TRANSACTION_SCRIPT, statement};

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
        let script = squash(TRANSACTION_SCRIPT);
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
                "'ACTIVE', t.now, t.now + make_interval(secs => :ttl_secs) FROM t RETURNING *), held AS (UPDATE property SET status = 'RESERVED', reserved_by_id = created.agent_id, reserved_until = created.expires_at, updated_at = created.created_at FROM created WHERE property.id = created.property_id) SELECT * FROM created",
            ),
        ] {
            assert!(
                domain.contains(domain_part),
                "the domain's reserve SQL changed; update pgbench/reserve-transaction.sql to match: {domain_part}"
            );
            assert!(
                script.contains(script_part),
                "the script lacks: {script_part}"
            );
        }
        assert!(script.contains("BEGIN;") && script.contains("COMMIT;"));
    }

    #[test]
    fn a_script_becomes_its_sql_with_the_given_variables_as_literals() {
        let sql = statement(
            "\\set agent random(1, :agents)\nSELECT :ws::uuid, n FROM t WHERE n = :agent AND s = :other;\n",
            &[("ws", "o'k".to_owned()), ("agent", "7".to_owned())],
        );
        assert_eq!(
            sql,
            "SELECT 'o''k'::uuid, n FROM t WHERE n = '7' AND s = :other"
        );
    }

    #[test]
    fn the_one_statement_script_is_one_statement_with_its_variables_named() {
        let sql = statement(
            ONE_STATEMENT_SCRIPT,
            &[
                ("ws", "w".to_owned()),
                ("agent", "1".to_owned()),
                ("ttl_secs", "60".to_owned()),
                ("max_active", "0".to_owned()),
            ],
        );
        let code: String = sql
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(!code.contains(';'), "one statement, no other: {code}");
        for name in [":ws", ":agent", ":ttl_secs", ":max_active"] {
            assert!(ONE_STATEMENT_SCRIPT.contains(name), "{name} is named");
            assert!(!code.contains(name), "{name} is substituted");
        }
        assert!(
            !TRANSACTION_SCRIPT.contains("86400"),
            "the hold time is a variable"
        );
    }
}
