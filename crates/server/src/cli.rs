//! The command line: `serve` (the default), `migrate`, `bootstrap`, `token`,
//! `seed-demo`, `print-schema`, `audit`, and the operators' `workspace
//! suspend|resume`, `user deactivate|activate` and `import-properties`
//! (docs/API.md, "Commands").
//! A bad setting stops the program with one line naming it and exit code 2
//! (holdfast-runtime's `SettingsError`, as for the worker).

use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use holdfast_domain::entities::{WorkspaceStatus, user, workspace};
use holdfast_domain::team::{self, UserSwitch, WorkspaceSwitch};
use holdfast_domain::{ProjectId, UserId, WorkspaceId, directory};
use holdfast_runtime::settings::{self, parse_positive_duration};
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
        /// Make the workspace even if one with this name (without regard
        /// to case) already has this admin email: without it, a second run
        /// is refused, naming the workspace it would duplicate.
        #[arg(long)]
        allow_duplicate: bool,
    },
    /// Print a fresh bearer token for an existing user.
    Token {
        #[arg(long)]
        user_id: UserId,
        /// How long the token lasts: longer than zero.
        #[arg(long, default_value = "30d", value_parser = parse_positive_duration)]
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
    /// Add or update, by code, the plots of a CSV file (a header row with
    /// code and, optionally, price) in a project, all or none, in batches,
    /// with progress on stderr; print {"created": N, "updated": M}.
    ImportProperties {
        #[arg(long)]
        project_id: ProjectId,
        /// The CSV file.
        file: std::path::PathBuf,
    },
    /// Check every invariant of holdfast's data in the database; print each broken
    /// one with its rows and exit 1, or exit 0 when all hold.
    Audit,
    /// For operators: suspend a workspace (its users are refused with
    /// FORBIDDEN from their next request on) or resume it.
    Workspace {
        #[command(subcommand)]
        action: WorkspaceAction,
    },
    /// For operators: deactivate a user (their tokens stop working at once)
    /// or activate them again, as updateUser(active:) does, even for the
    /// last active admin of a workspace.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum WorkspaceAction {
    /// Refuse every request of the workspace's users until it is resumed.
    Suspend {
        #[arg(long)]
        workspace_id: WorkspaceId,
    },
    /// Let the workspace's users in again.
    Resume {
        #[arg(long)]
        workspace_id: WorkspaceId,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum UserAction {
    /// Refuse the user's tokens from their next request on; their holds and
    /// places in line stay until they end.
    Deactivate {
        #[arg(long)]
        user_id: UserId,
    },
    /// Let the user in again.
    Activate {
        #[arg(long)]
        user_id: UserId,
    },
}

/// What `bootstrap` prints, in this order: scripts read it.
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
            allow_duplicate,
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
            let existing = directory::workspaces_of_admin(&db, &workspace, &admin_email).await?;
            if let Some((ws, admin)) = existing.first().filter(|_| !allow_duplicate) {
                anyhow::bail!(
                    "a workspace named {:?} with the admin {} already exists (workspace {}, \
                     user {}): run `holdfast-server token --user-id {}` for a new token, or \
                     pass --allow-duplicate to make another workspace",
                    ws.name,
                    admin.email,
                    ws.id,
                    admin.id,
                    admin.id
                );
            }
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
        Command::ImportProperties { project_id, file } => {
            let db = app::connect_db(&config).await?;
            let printed = crate::import::import_file(&db, project_id, &file).await?;
            println!("{}", serde_json::to_string(&printed)?);
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
        Command::Workspace { action } => {
            let (id, status) = match action {
                WorkspaceAction::Suspend { workspace_id } => {
                    (workspace_id, WorkspaceStatus::Suspended)
                }
                WorkspaceAction::Resume { workspace_id } => (workspace_id, WorkspaceStatus::Active),
            };
            let db = app::connect_db(&config).await?;
            let switch = team::switch_workspace(&db, id, status)
                .await
                .map_err(|e| not_found_or(e, || format!("no workspace with id {id}")))?;
            println!("{}", describe_workspace_switch(&switch));
            Ok(())
        }
        Command::User { action } => {
            let (id, active) = match action {
                UserAction::Deactivate { user_id } => (user_id, false),
                UserAction::Activate { user_id } => (user_id, true),
            };
            let db = app::connect_db(&config).await?;
            let switch = team::switch_user(&db, id, active)
                .await
                .map_err(|e| not_found_or(e, || format!("no user with id {id}")))?;
            print!("{}", describe_user_switch(&switch));
            Ok(())
        }
    }
}

/// A domain error as the command reports it, a missing row by its id.
fn not_found_or(
    err: holdfast_domain::DomainError,
    missing: impl FnOnce() -> String,
) -> anyhow::Error {
    match err {
        holdfast_domain::DomainError::NotFound(_) => anyhow::anyhow!(missing()),
        other => other.into(),
    }
}

fn workspace_label(ws: &workspace::Model) -> String {
    format!("workspace {} ({})", ws.name, ws.id)
}

/// `workspace Acme (id) suspended; it was active`, or `... already suspended`.
fn describe_workspace_switch(switch: &WorkspaceSwitch) -> String {
    let label = workspace_label(&switch.workspace);
    let state = |status: WorkspaceStatus| match status {
        WorkspaceStatus::Suspended => "suspended",
        WorkspaceStatus::Active => "active",
    };
    let now = switch.workspace.status;
    if switch.was == now {
        return format!("{label} already {}", state(now));
    }
    let done = match now {
        WorkspaceStatus::Suspended => "suspended",
        WorkspaceStatus::Active => "resumed",
    };
    format!("{label} {done}; it was {}", state(switch.was))
}

/// One line saying what happened to the user, and a second when the
/// workspace was left without an active admin.
fn describe_user_switch(switch: &UserSwitch) -> String {
    let user = &switch.user;
    let label = format!(
        "user {} <{}> ({}) of {}",
        user.name,
        user.email,
        user.id,
        workspace_label(&switch.workspace)
    );
    let state = |active: bool| if active { "active" } else { "deactivated" };
    let mut out = if switch.was_active == user.active {
        format!("{label} already {}\n", state(user.active))
    } else {
        let done = if user.active {
            "activated"
        } else {
            "deactivated"
        };
        format!("{label} {done}; they were {}\n", state(switch.was_active))
    };
    if switch.was_last_active_admin {
        out.push_str(&format!(
            "note: they were the last active admin of {}: nobody can manage its users over the API \
             until an admin is activated (holdfast-server user activate --user-id {})\n",
            workspace_label(&switch.workspace),
            user.id
        ));
    }
    out
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
