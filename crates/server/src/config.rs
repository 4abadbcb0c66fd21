//! The server's settings: one typed struct, every field both an environment
//! variable and a flag (README, "Configuration"), checked at start.
//! What the worker reads too (where to connect, how to log, the reservation
//! rules) comes from holdfast-runtime, flattened in.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use holdfast_runtime::SettingsError;
use holdfast_runtime::logging::{self, LogStream};
use holdfast_runtime::settings::setting_name;
pub use holdfast_runtime::{Deployment, Environment, HumanDuration, LogFormat, Rules, Secret};

pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(3);
pub const DEFAULT_DB_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_DB_MAX_CONNECTIONS: u32 = 32;
/// Longest a GraphQL request over HTTP may take (see `deadline.rs`).
/// Long enough for the slowest healthy request, a reserve that waits
/// `HOLDFAST_DB_TIMEOUT` for a connection and `HOLDFAST_LOCK_TIMEOUT` for its
/// plot (5 + 3 s by default) and still commits a second before the deadline;
/// short enough that a client, or a proxy in front, is never left waiting on
/// a silent link.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The request timeout's bounds: a second of it is kept for the work after
/// a commit, so less than two leaves a write no time at all.
pub const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
pub const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(3600);
/// Used when `HOLDFAST_JWT_SECRET` is unset outside production, with a warning:
/// anyone who reads this file can mint tokens for such a deployment.
pub const DEV_JWT_SECRET: &str = "holdfast-development-secret-never-use-in-production";
/// The shortest secret production accepts: HS256 wants a key as long as its hash.
pub const MIN_PRODUCTION_SECRET_BYTES: usize = 32;

/// Every setting of the server. Tests build it as a struct (from `Default`)
/// so that parallel tests never share process environment.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    #[command(flatten)]
    pub deployment: Deployment,

    /// HTTP address; port 0 picks a free port.
    #[arg(long, env = "HOLDFAST_LISTEN", default_value_t = DEFAULT_LISTEN, global = true)]
    pub listen: SocketAddr,

    /// HS256 key for bearer tokens (required, at least 32 bytes, in production).
    #[arg(
        long,
        env = "HOLDFAST_JWT_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub jwt_secret: Option<Secret>,

    #[command(flatten)]
    pub rules: Rules,

    /// How long a request waits for a row lock before it answers BUSY.
    #[arg(long, env = "HOLDFAST_LOCK_TIMEOUT", default_value_t = HumanDuration(DEFAULT_LOCK_TIMEOUT), global = true)]
    pub lock_timeout: HumanDuration,

    /// How long a request waits for a database connection before it answers
    /// SERVICE_UNAVAILABLE.
    #[arg(long, env = "HOLDFAST_DB_TIMEOUT", default_value_t = HumanDuration(DEFAULT_DB_TIMEOUT), global = true)]
    pub db_timeout: HumanDuration,

    /// Longest a GraphQL request over HTTP may take, whatever PostgreSQL or
    /// Redis do; past it the answer is SERVICE_UNAVAILABLE, and a write that
    /// had not committed is rolled back (2s to 1h).
    #[arg(long, env = "HOLDFAST_REQUEST_TIMEOUT", default_value_t = HumanDuration(DEFAULT_REQUEST_TIMEOUT), value_parser = parse_request_timeout, global = true)]
    pub request_timeout: HumanDuration,

    /// Size of the PostgreSQL connection pool.
    #[arg(long, env = "HOLDFAST_DB_MAX_CONNECTIONS", default_value_t = DEFAULT_DB_MAX_CONNECTIONS, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub db_max_connections: u32,

    /// Changes a live subscriber may fall behind before it is dropped (close
    /// code 4413).
    #[arg(long, env = "HOLDFAST_SUBSCRIBER_BUFFER", default_value_t = crate::live::DEFAULT_SUBSCRIBER_BUFFER, value_parser = parse_buffer, global = true)]
    pub subscriber_buffer: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            deployment: Deployment::default(),
            listen: DEFAULT_LISTEN,
            jwt_secret: None,
            rules: Rules::default(),
            lock_timeout: HumanDuration(DEFAULT_LOCK_TIMEOUT),
            db_timeout: HumanDuration(DEFAULT_DB_TIMEOUT),
            request_timeout: HumanDuration(DEFAULT_REQUEST_TIMEOUT),
            db_max_connections: DEFAULT_DB_MAX_CONNECTIONS,
            subscriber_buffer: crate::live::DEFAULT_SUBSCRIBER_BUFFER,
        }
    }
}

impl Config {
    /// Checks what a single value cannot: settings that depend on each other.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let secret = setting_name("HOLDFAST_JWT_SECRET", "--jwt-secret");
        match &self.jwt_secret {
            None if self.is_production() => Err(SettingsError::invalid(
                &secret,
                "required when HOLDFAST_ENV=production",
            )),
            Some(s) if s.expose().is_empty() => {
                Err(SettingsError::invalid(&secret, "must not be empty"))
            }
            Some(s) if self.is_production() && s.expose().len() < MIN_PRODUCTION_SECRET_BYTES => {
                Err(SettingsError::invalid(
                    &secret,
                    format!(
                        "is {} bytes long; production needs at least {MIN_PRODUCTION_SECRET_BYTES}",
                        s.expose().len()
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The key bearer tokens are signed with, and whether it is the
    /// development default (which deserves a warning).
    pub fn jwt_secret(&self) -> (&str, bool) {
        match &self.jwt_secret {
            Some(secret) => (secret.expose(), false),
            None => (DEV_JWT_SECRET, true),
        }
    }

    pub fn is_production(&self) -> bool {
        self.deployment.is_production()
    }

    /// Installs the log subscriber this config asks for, on stderr: stdout
    /// is for what commands print (bootstrap's JSON, tokens, the schema).
    pub fn init_logging(&self) {
        logging::init(
            &self.deployment.log_filter,
            self.deployment.log_format,
            LogStream::Stderr,
        );
    }
}

fn parse_buffer(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err("must be a whole number from 1 to 1000000".into()),
    }
}

fn parse_request_timeout(s: &str) -> Result<HumanDuration, String> {
    let d: HumanDuration = s.parse()?;
    if !(MIN_REQUEST_TIMEOUT..=MAX_REQUEST_TIMEOUT).contains(&d.0) {
        return Err(format!(
            "must be from {} to {} (a second of it is kept for the work after a commit)",
            HumanDuration(MIN_REQUEST_TIMEOUT),
            HumanDuration(MAX_REQUEST_TIMEOUT)
        ));
    }
    Ok(d)
}
