//! The pgbench side of the reserve benchmark: the helper tables and function
//! its scripts draw on, and the scripts themselves, one `.sql` file each under
//! `crates/bench/pgbench/`: `reserve-one-statement.sql`, the best one-statement
//! SQL for reserving a free plot (the limit of the reserve ratio), and
//! `reserve-transaction.sql`, the server's earlier reserve transaction
//! statement for statement, for continuity with the earlier figures, and
//! `reserve-server-statement.sql`, the server's reserve as it sends it now
//! (`rules.reserve` in one round trip), for what the rules' PL/pgSQL costs.
//! `scripts/bench.sh` hands the files to pgbench as they
//! are; `statement` turns one into plain SQL for the tests.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// The limit: one statement, one round trip.
pub const ONE_STATEMENT_SCRIPT: &str = include_str!("../pgbench/reserve-one-statement.sql");
/// The server's transaction, for continuity with the earlier figures.
pub const TRANSACTION_SCRIPT: &str = include_str!("../pgbench/reserve-transaction.sql");
/// The server's own statement, `rules.reserve` in one round trip.
pub const SERVER_STATEMENT_SCRIPT: &str = include_str!("../pgbench/reserve-server-statement.sql");

/// The count of the one-statement script, in a function of its own: a
/// VOLATILE function's query takes a fresh snapshot, so the count made after
/// the agent's lock was granted sees the holds of the reserves it waited for
/// (the script's header says why a count inside the statement would not).
/// The count itself is the hold rules' (`rules.holds_of`); PL/pgSQL, because
/// PostgreSQL inlines a one-expression SQL function into its caller, whose
/// snapshot it would then read.
const ACTIVE_HOLDS_FUNCTION: &str = "CREATE OR REPLACE FUNCTION bench_active_holds(agent uuid) \
     RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$ \
     BEGIN RETURN rules.holds_of(agent, clock_timestamp()); END $$";

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
