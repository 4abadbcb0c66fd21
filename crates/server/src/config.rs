//! The server's settings: one typed struct, every field both an environment
//! variable and a flag (CONTRACT.md, "Configuration"), checked at start.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use clap::ValueEnum;
use holdfast_domain::Policy;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/holdfast";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_QUEUE: &str = "holdfast";
/// Used when `HOLDFAST_JWT_SECRET` is unset outside production, with a warning:
/// anyone who reads this file can mint tokens for such a deployment.
pub const DEV_JWT_SECRET: &str = "holdfast-development-secret-never-use-in-production";
/// The shortest secret production accepts: HS256 wants a key as long as its hash.
pub const MIN_PRODUCTION_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Every setting of the server. Tests build it as a struct (from `Default`)
/// so that parallel tests never share process environment.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// PostgreSQL (14 or newer).
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true, value_parser = parse_database_url)]
    pub database_url: String,

    /// Redis (6.2 or newer), where release jobs wait for their time.
    #[arg(long, env = "REDIS_URL", default_value = DEFAULT_REDIS_URL, global = true, value_parser = parse_redis_url)]
    pub redis_url: String,

    /// HTTP address; port 0 picks a free port.
    #[arg(long, env = "HOLDFAST_LISTEN", default_value = DEFAULT_LISTEN, global = true)]
    pub listen: SocketAddr,

    /// HS256 key for bearer tokens (required, at least 32 bytes, in production).
    #[arg(
        long,
        env = "HOLDFAST_JWT_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,

    /// `production` also turns off GraphiQL and introspection.
    #[arg(
        long = "env",
        env = "HOLDFAST_ENV",
        default_value = "development",
        value_enum,
        global = true
    )]
    pub environment: Environment,

    /// Hold time of a reservation (humantime: 90s, 15m, 24h).
    #[arg(long, env = "HOLDFAST_RESERVATION_TTL", default_value = "24h", value_parser = parse_duration, global = true)]
    pub reservation_ttl: Duration,

    /// How often one reservation may be extended.
    #[arg(
        long,
        env = "HOLDFAST_MAX_EXTENSIONS",
        default_value_t = 2,
        global = true
    )]
    pub max_extensions: u32,

    /// Active reservations one agent may hold at once; 0 means no limit.
    #[arg(
        long,
        env = "HOLDFAST_MAX_ACTIVE_PER_AGENT",
        default_value_t = 10,
        global = true
    )]
    pub max_active_per_agent: u32,

    /// Name of the Redis queue, and prefix of every Redis key holdfast writes.
    #[arg(long, env = "HOLDFAST_QUEUE", default_value = DEFAULT_QUEUE, global = true, value_parser = parse_queue)]
    pub queue: String,

    /// How long a request waits for a row lock before it answers BUSY.
    #[arg(long, env = "HOLDFAST_LOCK_TIMEOUT", default_value = "3s", value_parser = parse_duration, global = true)]
    pub lock_timeout: Duration,

    /// How long a request waits for a database connection before it answers
    /// SERVICE_UNAVAILABLE.
    #[arg(long, env = "HOLDFAST_DB_TIMEOUT", default_value = "5s", value_parser = parse_duration, global = true)]
    pub db_timeout: Duration,

    /// Size of the PostgreSQL connection pool.
    #[arg(long, env = "HOLDFAST_DB_MAX_CONNECTIONS", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub db_max_connections: u32,

    /// Changes a live subscriber may fall behind before it is dropped (close
    /// code 4413).
    #[arg(long, env = "HOLDFAST_SUBSCRIBER_BUFFER", default_value_t = crate::live::DEFAULT_SUBSCRIBER_BUFFER, value_parser = parse_buffer, global = true)]
    pub subscriber_buffer: usize,

    /// Log filter (tracing's EnvFilter syntax).
    #[arg(long = "log", env = "RUST_LOG", default_value = "info", global = true, value_parser = parse_log_filter)]
    pub log_filter: String,

    /// `pretty` or `json`.
    #[arg(
        long,
        env = "HOLDFAST_LOG_FORMAT",
        default_value = "pretty",
        value_enum,
        global = true
    )]
    pub log_format: LogFormat,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            redis_url: DEFAULT_REDIS_URL.to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            jwt_secret: None,
            environment: Environment::Development,
            reservation_ttl: Duration::from_secs(24 * 3600),
            max_extensions: 2,
            max_active_per_agent: 10,
            queue: DEFAULT_QUEUE.to_owned(),
            lock_timeout: Duration::from_secs(3),
            db_timeout: Duration::from_secs(5),
            db_max_connections: 32,
            subscriber_buffer: crate::live::DEFAULT_SUBSCRIBER_BUFFER,
            log_filter: "info".to_owned(),
            log_format: LogFormat::Pretty,
        }
    }
}

/// A setting with a bad value: printed as one line, exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting}: {message}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub message: String,
}

impl Config {
    /// Checks what a single value cannot: settings that depend on each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.environment == Environment::Production {
            match &self.jwt_secret {
                None => {
                    return Err(ConfigError {
                        setting: "HOLDFAST_JWT_SECRET",
                        message: "required when HOLDFAST_ENV=production".into(),
                    });
                }
                Some(s) if s.len() < MIN_PRODUCTION_SECRET_BYTES => {
                    return Err(ConfigError {
                        setting: "HOLDFAST_JWT_SECRET",
                        message: format!(
                            "is {} bytes long; production needs at least {MIN_PRODUCTION_SECRET_BYTES}",
                            s.len()
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        if matches!(&self.jwt_secret, Some(s) if s.is_empty()) {
            return Err(ConfigError {
                setting: "HOLDFAST_JWT_SECRET",
                message: "must not be empty".into(),
            });
        }
        if self.reservation_ttl.is_zero() {
            return Err(ConfigError {
                setting: "HOLDFAST_RESERVATION_TTL",
                message: "must be longer than zero".into(),
            });
        }
        Ok(())
    }

    /// The reservation rules this deployment sets.
    pub fn policy(&self) -> Policy {
        Policy {
            ttl: self.reservation_ttl,
            max_extensions: self.max_extensions,
            max_active_per_agent: self.max_active_per_agent,
        }
    }

    /// The key bearer tokens are signed with, and whether it is the
    /// development default (which deserves a warning).
    pub fn jwt_secret(&self) -> (&str, bool) {
        match &self.jwt_secret {
            Some(secret) => (secret, false),
            None => (DEV_JWT_SECRET, true),
        }
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{e} (expected a duration such as 90s, 15m or 24h)"))
}

fn parse_database_url(s: &str) -> Result<String, String> {
    sea_orm::sqlx::postgres::PgConnectOptions::from_str(s)
        .map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
    if !(s.starts_with("postgres://") || s.starts_with("postgresql://")) {
        return Err("not a PostgreSQL URL: it must start with postgres://".into());
    }
    Ok(s.to_owned())
}

fn parse_redis_url(s: &str) -> Result<String, String> {
    redis::Client::open(s).map_err(|e| format!("not a Redis URL: {e}"))?;
    Ok(s.to_owned())
}

fn parse_queue(s: &str) -> Result<String, String> {
    holdfast_queue::validate_queue_name(s).map_err(|e| e.to_string())?;
    Ok(s.to_owned())
}

fn parse_buffer(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err("must be a whole number from 1 to 1000000".into()),
    }
}

fn parse_log_filter(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(s).map_err(|e| format!("not a log filter: {e}"))?;
    Ok(s.to_owned())
}
