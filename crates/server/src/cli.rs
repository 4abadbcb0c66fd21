//! The command line: `serve` (the default), `migrate`, `bootstrap`, `token`,
//! `seed-demo`, `print-schema` and `audit` (CONTRACT.md, "Binaries and commands").
//! A bad setting stops the program with one line naming it and exit code 2
//! (holdfast-runtime's `SettingsError`, as for the worker).

use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use holdfast_domain::entities::user;
use holdfast_domain::{UserId, directory};
use holdfast_runtime::settings::{self, parse_duration};
use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sea_orm::{ConnectOptions, Database, EntityTrait};

use crate::app::{self, Application};
use crate::config::Config;
use crate::{graphql, seed};

#[derive(Debug, Parser)]
#[command(
    name = "holdfast-server",
    version,
    about = "The GraphQL server of holdfast"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve HTTP on HOLDFAST_LISTEN until SIGINT/SIGTERM (the default).
    Serve,
    /// Create the database if it does not exist and apply pending migrations.
    Migrate,
    /// Create a workspace and its first ADMIN; print {"workspaceId","userId","token"}.
    Bootstrap {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        admin_email: String,
        /// Defaults to the part of the email before the @.
        #[arg(long)]
        admin_name: Option<String>,
    },
    /// Print a fresh bearer token for an existing user.
    Token {
        #[arg(long)]
        user_id: UserId,
        #[arg(long, default_value = "30d", value_parser = parse_duration)]
        ttl: Duration,
    },
    /// Create (or reuse) a demo workspace and print its users and tokens; a
    /// new one starts with a few holds for buyers.
    SeedDemo {
        /// Leave every plot of a new demo free (no holds for buyers).
        #[arg(long)]
        no_holds: bool,
    },
    /// Print the GraphQL SDL.
    PrintSchema,
    /// Check every invariant of DESIGN.md in the database; print each broken
    /// one with its rows and exit 1, or exit 0 when all hold.
    Audit,
}

/// What `bootstrap` prints, in CONTRACT.md's order.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Bootstrapped {
    workspace_id: String,
    user_id: String,
    token: String,
}

const PROGRAM: &str = "holdfast-server";

/// Runs the binary: parse, check, then do the command.
pub fn main() -> ExitCode {
    let cli = match settings::parse::<Cli, _, _>(std::env::args_os()) {
        Ok(cli) => cli,
        Err(err) => return err.report(PROGRAM),
    };
    if let Err(err) = cli.config.validate() {
        return err.report(PROGRAM);
    }
    cli.config.init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("{PROGRAM}: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{PROGRAM}: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&config).await,
        Command::Migrate => migrate(&config.deployment.database_url).await,
        Command::Bootstrap {
            workspace,
            admin_email,
            admin_name,
        } => {
            let admin_name = admin_name.unwrap_or_else(|| {
                admin_email
                    .split('@')
                    .next()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("Admin")
                    .to_owned()
            });
            let db = app::connect_db(&config).await?;
            let (ws, admin) =
                directory::create_workspace(&db, &workspace, &admin_email, &admin_name).await?;
            let token = app::tokens(&config).mint(
                admin.id,
                ws.id,
                crate::graphql::mutation::NEW_USER_TOKEN_TTL,
            )?;
            let out = Bootstrapped {
                workspace_id: ws.id.to_string(),
                user_id: admin.id.to_string(),
                token,
            };
            println!("{}", serde_json::to_string(&out)?);
            Ok(())
        }
        Command::Token { user_id, ttl } => {
            let db = app::connect_db(&config).await?;
            let user = user::Entity::find_by_id(user_id)
                .one(&db)
                .await?
                .with_context(|| format!("no user with id {user_id}"))?;
            if !user.active {
                anyhow::bail!("user {user_id} is deactivated");
            }
            println!(
                "{}",
                app::tokens(&config).mint(user.id, user.workspace_id, ttl)?
            );
            Ok(())
        }
        Command::SeedDemo { no_holds } => {
            let db = app::connect_db(&config).await?;
            let deployment = &config.deployment;
            let queue = holdfast_queue::ReleaseQueue::new(&deployment.redis_url, &deployment.queue)
                .context("REDIS_URL")?;
            let outbox = holdfast_runtime::Outbox::new(queue, config.rules.policy());
            let holds = if no_holds { None } else { Some(&outbox) };
            let demo = seed::seed_demo(&db, &app::tokens(&config), holds).await?;
            let port = config.listen.port();
            let url = format!("http://127.0.0.1:{port}/graphql");
            print!("{}", seed::describe(&demo, &url));
            Ok(())
        }
        Command::PrintSchema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Audit => {
            let db = app::connect_db(&config).await?;
            let violations = holdfast_domain::audit::audit(&db).await?;
            for v in &violations {
                println!("broken: {}", v.invariant);
                for row in &v.rows {
                    println!("  {row}");
                }
            }
            if !violations.is_empty() {
                anyhow::bail!("{} invariant(s) broken", violations.len());
            }
            println!("every invariant holds");
            Ok(())
        }
    }
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    app.run_until(holdfast_runtime::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Creates the database named in `url` if it is missing, then applies every
/// pending migration. Running it twice is harmless.
pub async fn migrate(url: &str) -> anyhow::Result<()> {
    let options = PgConnectOptions::from_str(url).context("DATABASE_URL")?;
    if let Some(name) = options.get_database().map(str::to_owned) {
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone().database("postgres"))
            .await
            .context("connecting to PostgreSQL's `postgres` database to create the database")?;
        let exists: Option<(i32,)> =
            sea_orm::sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
                .bind(&name)
                .fetch_optional(&admin)
                .await?;
        if exists.is_none() {
            let quoted = format!("\"{}\"", name.replace('"', "\"\""));
            match sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE {quoted}"
            )))
            .execute(&admin)
            .await
            {
                Ok(_) => tracing::info!(database = %name, "created the database"),
                // Another migrate created it meanwhile: just as good.
                Err(e)
                    if e.as_database_error()
                        .and_then(|d| d.code())
                        .is_some_and(|c| c == "42P04") => {}
                Err(e) => return Err(e).context("creating the database"),
            }
        }
        admin.close().await;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    // Every migration statement at INFO would bury what the command says.
    options.sqlx_logging(false);
    let db = Database::connect(options)
        .await
        .context("connecting to DATABASE_URL")?;
    holdfast_migrations::migrate(&db)
        .await
        .context("applying migrations")?;
    tracing::info!("migrations applied");
    db.close().await?;
    Ok(())
}
