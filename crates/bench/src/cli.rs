//! The command line: `setup` a bench workspace, `run` a scenario against a
//! running server (and check the invariants after it), `sweep` and `lag`
//! measurements, and the helpers `scripts/bench.sh` needs between runs.
//! Exit code 1, with a loud message, when an invariant breaks.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use holdfast_domain::db::{self, PoolSettings};
use sea_orm::DatabaseConnection;

use crate::agents::{Agent, BenchWorkspace, tokens_from_cli};
use crate::invariants::{self, Seen};
use crate::outcome::{Op, Outcome};
use crate::scenarios::{self, Scenario, Target};
use crate::{floor, lag, pgbench, promotions, results, setup, sweep};

#[derive(Debug, Parser)]
#[command(
    name = "holdfast-bench",
    version,
    about = "Load generator and benchmarks of holdfast (see docs/BENCHMARKS.md)"
)]
pub struct Cli {
    /// The server's PostgreSQL: seeded by `setup`, checked after every run.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/holdfast",
        global = true
    )]
    pub database_url: String,

    /// Append the figures as NAME=value lines to this file (for bench.sh).
    #[arg(long, global = true)]
    pub results: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Create a workspace with one project of many plots and many agents;
    /// write the ids and the agents' tokens to a JSON file.
    Setup {
        #[arg(long, default_value_t = 100_000)]
        plots: u64,
        #[arg(long, default_value_t = 100)]
        agents: u32,
        /// The holdfast-server binary whose `token` command mints the tokens.
        #[arg(long)]
        server_bin: PathBuf,
        #[arg(long, default_value = "1d")]
        token_ttl: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Run a scenario against a running server, then check the invariants.
    Run {
        #[arg(long, value_enum)]
        scenario: Scenario,
        #[command(flatten)]
        target: TargetArgs,
        /// How long to run (humantime: 10s, 1m); spread, mixed, story-2.5
        /// and reads; launch's longest (2 minutes unless given).
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// How many requests to send at most.
        #[arg(long)]
        count: Option<u64>,
        /// reads: how many agents only read, besides the --agents who
        /// reserve (the agents after those).
        #[arg(long, default_value_t = 4)]
        readers: usize,
    },
    /// Check the invariants now, without a run.
    Check {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Add a project of --plots plots to the bench workspace (launch opens
    /// one); write a workspace file for it, with the same agents.
    AddProject {
        #[arg(long)]
        workspace_file: PathBuf,
        #[arg(long, default_value_t = 200)]
        plots: u64,
        #[arg(long, default_value = "Launch")]
        name: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Put every plot of the bench project back to AVAILABLE (deletes its history).
    Reset {
        #[arg(long)]
        workspace_file: PathBuf,
    },
    /// Make the helper tables and function the pgbench scripts
    /// (crates/bench/pgbench/*.sql) draw on.
    PgbenchPrepare {
        #[arg(long)]
        workspace_file: PathBuf,
    },
    /// Time the domain's sweep over lapsed holds against a raw batched UPDATE.
    Sweep {
        #[arg(long)]
        workspace_file: PathBuf,
        #[arg(long, default_value_t = 100_000)]
        count: u64,
        /// Batch size, as the worker's HOLDFAST_SWEEP_BATCH_SIZE (default 1000).
        #[arg(long, default_value_t = 1000)]
        batch_size: u32,
    },
    /// Serve the floor of the stack (BENCH_FLOOR): reserveProperty as the
    /// server makes it, without GraphQL. Reads the server's settings from the
    /// environment (DATABASE_URL, REDIS_URL, HOLDFAST_QUEUE, HOLDFAST_LISTEN,
    /// HOLDFAST_JWT_SECRET, ...) and serves until stopped.
    FloorServer,
    /// Reserve holds on a server with a short hold time and measure how late
    /// the worker releases them.
    Lag {
        #[command(flatten)]
        target: TargetArgs,
        #[arg(long, default_value_t = 1000)]
        count: usize,
    },
    /// Hold plots on a server with a short hold time, each with a line of
    /// --line agents behind it, and measure how soon the worker hands each
    /// lapsed hold's plot to the next in line; check that every line moved
    /// exactly once per ended hold.
    Promotions {
        #[command(flatten)]
        target: TargetArgs,
        /// How many plots to hold (each lapsed hold makes one promotion per
        /// place in line).
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// Places in line behind each hold (at most the server's
        /// HOLDFAST_MAX_QUEUE_LENGTH).
        #[arg(long, default_value_t = 3)]
        line: usize,
    },
}

/// Which server and which agents a run uses.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// The server's GraphQL endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8080/graphql")]
    pub url: String,
    /// The file `setup` wrote.
    #[arg(long)]
    pub workspace_file: PathBuf,
    /// How many of its agents run at once (story-2.5 wants 50, hot 100,
    /// launch 1000; reads: those who reserve).
    #[arg(long, default_value_t = 16)]
    pub agents: usize,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("holdfast-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(Verdict::Pass) => ExitCode::SUCCESS,
        Ok(Verdict::Broken(lines)) => {
            eprintln!();
            eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
            eprintln!(
                "holdfast-bench: INVARIANT OR EXPECTATION BROKEN ({} findings):",
                lines.len()
            );
            for line in &lines {
                eprintln!("  - {line}");
            }
            eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("holdfast-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Whether what was checked held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Broken(Vec<String>),
}

impl Verdict {
    fn of(lines: Vec<String>) -> Verdict {
        if lines.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Broken(lines)
        }
    }
}

async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    let settings = PoolSettings {
        max_connections: 4,
        // The sweep benchmark and the checks run long statements on purpose.
        statement_timeout: Duration::from_secs(600),
        application_name: "holdfast-bench".to_owned(),
        ..PoolSettings::default()
    };
    db::connect(url, &settings).await.context("DATABASE_URL")
}

async fn run(cli: Cli) -> anyhow::Result<Verdict> {
    let db = connect(&cli.database_url).await?;
    let out = cli.results.as_deref();
    match cli.command {
        Command::Setup {
            plots,
            agents,
            server_bin,
            token_ttl,
            out: path,
        } => {
            let seeded = setup::seed(&db, plots, agents).await?;
            let tokens = tokens_from_cli(&server_bin, &seeded.agent_ids, &token_ttl).await?;
            let ws = BenchWorkspace {
                workspace_id: seeded.workspace_id,
                project_id: seeded.project_id,
                plots: seeded.plots,
                agents: seeded
                    .agent_ids
                    .into_iter()
                    .zip(tokens)
                    .map(|(id, token)| Agent { id, token })
                    .collect(),
            };
            ws.save(&path)?;
            println!(
                "{}",
                serde_json::to_string(&serde_json::json!({
                    "workspaceId": ws.workspace_id,
                    "projectId": ws.project_id,
                    "plots": ws.plots,
                    "agents": ws.agents.len(),
                    "file": path.display().to_string(),
                }))?
            );
            Ok(Verdict::Pass)
        }
        Command::Run {
            scenario,
            target,
            duration,
            count,
            readers,
        } => {
            let ws = BenchWorkspace::load(&target.workspace_file)?;
            let readers = if scenario == Scenario::Reads {
                readers
            } else {
                0
            };
            let target = load_target(&db, &ws, &target, readers).await?;
            run_scenario(&db, scenario, &target, duration, count, out).await
        }
        Command::AddProject {
            workspace_file,
            plots,
            name,
            out: path,
        } => {
            let mut ws = BenchWorkspace::load(&workspace_file)?;
            ws.project_id = setup::add_project(&db, &ws.workspace_id, &name, plots).await?;
            ws.plots = plots;
            ws.save(&path)?;
            println!(
                "project {} of {plots} plots: {}",
                ws.project_id,
                path.display()
            );
            Ok(Verdict::Pass)
        }
        Command::FloorServer => {
            floor::serve(&floor::config_from_env()?).await?;
            Ok(Verdict::Pass)
        }
        Command::Check { target } => {
            let ws = BenchWorkspace::load(&target.workspace_file)?;
            let clients = ws.clients(1, &target.url)?;
            Ok(Verdict::of(
                invariants::check(&db, &ws.project_id, clients.first(), None).await?,
            ))
        }
        Command::Reset { workspace_file } => {
            let ws = BenchWorkspace::load(&workspace_file)?;
            setup::reset_project(&db, &ws.project_id).await?;
            Ok(Verdict::Pass)
        }
        Command::PgbenchPrepare { workspace_file } => {
            let ws = BenchWorkspace::load(&workspace_file)?;
            let ids: Vec<String> = ws.agents.iter().map(|a| a.id.clone()).collect();
            pgbench::prepare(&db, &ws.project_id, &ids).await?;
            pgbench::restart(&db).await?;
            Ok(Verdict::Pass)
        }
        Command::Sweep {
            workspace_file,
            count,
            batch_size,
        } => {
            let ws = BenchWorkspace::load(&workspace_file)?;
            let (domain, raw) = sweep::compare(&db, &ws.project_id, count, batch_size).await?;
            sweep::clean_up(&db).await?;
            let ratio = domain.rate() / raw.rate();
            println!(
                "sweep of {count} lapsed holds, batches of {batch_size}, best of 2 each:\n  \
                 reservations::sweep  {:>9.0} holds/s ({:.2} s)\n  \
                 raw batched UPDATE   {:>9.0} holds/s ({:.2} s)\n  ratio {ratio:.2}",
                domain.rate(),
                domain.elapsed.as_secs_f64(),
                raw.rate(),
                raw.elapsed.as_secs_f64(),
            );
            results::emit(
                out,
                "sweep",
                &[
                    ("domain_per_sec", format!("{:.0}", domain.rate())),
                    ("raw_per_sec", format!("{:.0}", raw.rate())),
                    ("ratio", format!("{ratio:.2}")),
                ],
            )?;
            Ok(Verdict::of(
                invariants::check(&db, &ws.project_id, None, None).await?,
            ))
        }
        Command::Lag { target, count } => {
            let ws = BenchWorkspace::load(&target.workspace_file)?;
            let t = load_target(&db, &ws, &target, 0).await?;
            let lags = lag::measure(&db, &t, count).await?;
            print!("{}", lags.summary.render());
            println!(
                "release lag of {} holds (ended_at - expires_at): p50 {:.3} s, p99 {:.3} s, max {:.3} s; \
                 released by: {}; still active: {}",
                lags.count,
                lags.p50,
                lags.p99,
                lags.max,
                invariants::named_counts(&lags.sources),
                lags.still_active
            );
            results::emit(
                out,
                "lag",
                &[
                    ("count", lags.count.to_string()),
                    ("p50", format!("{:.3}", lags.p50)),
                    ("p99", format!("{:.3}", lags.p99)),
                    ("max", format!("{:.3}", lags.max)),
                    ("still_active", lags.still_active.to_string()),
                ],
            )?;
            let mut broken =
                invariants::check(&db, &ws.project_id, t.clients.first(), None).await?;
            if lags.still_active > 0 {
                broken.push(format!(
                    "{} holds were still ACTIVE well after they expired",
                    lags.still_active
                ));
            }
            Ok(Verdict::of(broken))
        }
        Command::Promotions {
            target,
            count,
            line,
        } => {
            let ws = BenchWorkspace::load(&target.workspace_file)?;
            let t = load_target(&db, &ws, &target, 0).await?;
            let (p, broken) = promotions::measure(&db, &t, count, line).await?;
            print!("{}", p.summary.render());
            println!(
                "promotions after {} lapsed holds with a line of {} (new hold's created_at - \
                 old hold's expires_at): {} measured, p50 {:.3} s, p99 {:.3} s, max {:.3} s; \
                 the holds were ended by: {}; {} of them lapsed before the setup was done; \
                 {} still active, {} places skipped; all moves of the lines: {} holds ended, \
                 {} with a line, {} promotions",
                p.plots,
                p.line,
                p.count,
                p.p50,
                p.p99,
                p.max,
                invariants::named_counts(&p.sources),
                p.lapsed_during_setup,
                p.still_active,
                p.skipped,
                p.moves.ended,
                p.moves.with_line,
                p.moves.promotions,
            );
            results::emit(
                out,
                "promotions",
                &[
                    ("plots", p.plots.to_string()),
                    ("count", p.count.to_string()),
                    ("p50", format!("{:.3}", p.p50)),
                    ("p99", format!("{:.3}", p.p99)),
                    ("max", format!("{:.3}", p.max)),
                    ("ended", p.moves.ended.to_string()),
                    ("still_active", p.still_active.to_string()),
                    ("lapsed_during_setup", p.lapsed_during_setup.to_string()),
                    ("broken", broken.len().to_string()),
                ],
            )?;
            if broken.is_empty() {
                println!(
                    "  invariants: all hold, and every line moved exactly once per ended hold"
                );
            }
            Ok(Verdict::of(broken))
        }
    }
}

/// The first `args.agents` agents, and `readers` more after them.
async fn load_target(
    db: &DatabaseConnection,
    ws: &BenchWorkspace,
    args: &TargetArgs,
    readers: usize,
) -> anyhow::Result<Target> {
    Ok(Target {
        clients: ws.clients(args.agents, &args.url)?,
        readers: ws.clients_from(args.agents, readers, &args.url)?,
        project_id: ws.project_id.clone(),
        plots: Arc::new(setup::available_plots(db, &ws.project_id).await?),
    })
}

/// Runs one scenario, prints its report, emits its figures, and checks the
/// invariants and the scenario's own expectations.
pub async fn run_scenario(
    db: &DatabaseConnection,
    scenario: Scenario,
    target: &Target,
    duration: Option<Duration>,
    count: Option<u64>,
    out: Option<&std::path::Path>,
) -> anyhow::Result<Verdict> {
    let since = invariants::db_now(db).await?;
    let report = scenarios::run(scenario, target, duration, count).await?;
    print!("{}", report.summary.render());
    for note in &report.notes {
        println!("  note: {note}");
    }
    let s = &report.summary;
    let reserve_row = s
        .rows
        .iter()
        .find(|r| r.op == Op::Reserve && r.outcome == Outcome::Ok);
    let mut figures = vec![
        ("requests", s.total.count.to_string()),
        ("seconds", format!("{:.2}", s.elapsed.as_secs_f64())),
        ("reserved", s.count(Op::Reserve, Outcome::Ok).to_string()),
        ("reserved_per_sec", format!("{:.1}", s.reserved_per_sec())),
        ("p50_ms", format!("{:.2}", s.total.p50.as_secs_f64() * 1e3)),
        ("p99_ms", format!("{:.2}", s.total.p99.as_secs_f64() * 1e3)),
        ("max_ms", format!("{:.2}", s.total.max.as_secs_f64() * 1e3)),
    ];
    if let Some(row) = reserve_row {
        figures.push((
            "reserve_p99_ms",
            format!("{:.2}", row.p99.as_secs_f64() * 1e3),
        ));
    }
    for outcome in Outcome::ALL {
        figures.push((outcome.as_str(), s.count_outcome(outcome).to_string()));
    }
    figures.extend(report.figures.iter().cloned());
    let mut broken = report.failures.clone();
    if scenario == Scenario::Queue {
        let (moves, line_broken) =
            invariants::line_moved_once(db, &target.project_id, since).await?;
        println!(
            "  lines: {} holds ended, {} of them with somebody in line (ended by: {}), {} promotions",
            moves.ended,
            moves.with_line,
            invariants::named_counts(&moves.moved_by),
            moves.promotions
        );
        figures.extend([
            ("ended", moves.ended.to_string()),
            ("with_line", moves.with_line.to_string()),
            ("promotions", moves.promotions.to_string()),
        ]);
        broken.extend(line_broken);
    }
    // "story-2.5" becomes story25_... in the results file.
    let prefix: String = scenario
        .name()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    results::emit(out, &prefix, &figures)?;

    // Holds from the line are made by whoever ends the hold ahead (the
    // worker, another agent's release), not told to the agent who gets them:
    // the count of holds the clients were told of covers the other scenarios.
    let seen = (scenario != Scenario::Queue).then(|| Seen {
        since,
        reserved: s.count(Op::Reserve, Outcome::Ok),
        unanswered: s.count_outcome(Outcome::Transport),
    });
    broken.extend(
        invariants::check(
            db,
            &target.project_id,
            target.clients.first(),
            seen.as_ref(),
        )
        .await?,
    );
    if scenario == Scenario::Launch {
        broken.extend(invariants::taken_once(db, &target.project_id, since, &report.taken).await?);
    }
    if broken.is_empty() {
        println!("  invariants: all hold");
    }
    Ok(Verdict::of(broken))
}
