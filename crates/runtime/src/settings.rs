//! The settings both binaries read, as clap argument groups each binary
//! flattens into its own config: where they are pointed and how they log
//! (`Deployment`), and the reservation rules (`Rules`). Each value is parsed
//! and checked once, here, by one parser per kind; a bad one becomes a
//! `SettingsError`, one line naming the setting, and exit code 2.

use std::fmt;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Command, ValueEnum};
use holdfast_domain::Policy;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/holdfast";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_QUEUE: &str = "holdfast";
pub const DEFAULT_LOG_FILTER: &str = "info";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    #[default]
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// Where a binary is pointed and how it logs. Every flag is global, so that
/// it may follow the server's subcommands too.
#[derive(Clone, clap::Args)]
pub struct Deployment {
    /// PostgreSQL (14 or newer).
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true, value_parser = parse_database_url)]
    pub database_url: String,

    /// Redis (6.2 or newer), where release jobs wait for their time.
    #[arg(long, env = "REDIS_URL", default_value = DEFAULT_REDIS_URL, global = true, value_parser = parse_redis_url)]
    pub redis_url: String,

    /// Name of the Redis queue, and prefix of every Redis key holdfast writes.
    #[arg(long, env = "HOLDFAST_QUEUE", default_value = DEFAULT_QUEUE, global = true, value_parser = parse_queue)]
    pub queue: String,

    /// `development` or `production`, which refuses development defaults
    /// and turns off what only serves a developer.
    #[arg(long = "env", env = "HOLDFAST_ENV", value_enum, default_value_t = Environment::default(), global = true)]
    pub environment: Environment,

    /// Log filter (tracing's EnvFilter syntax).
    #[arg(long = "log", env = "RUST_LOG", default_value = DEFAULT_LOG_FILTER, global = true, value_parser = parse_log_filter)]
    pub log_filter: String,

    /// `pretty` or `json` (one object per line).
    #[arg(long, env = "HOLDFAST_LOG_FORMAT", value_enum, default_value_t = LogFormat::default(), global = true)]
    pub log_format: LogFormat,
}

impl Default for Deployment {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            redis_url: DEFAULT_REDIS_URL.to_owned(),
            queue: DEFAULT_QUEUE.to_owned(),
            environment: Environment::default(),
            log_filter: DEFAULT_LOG_FILTER.to_owned(),
            log_format: LogFormat::default(),
        }
    }
}

/// Shown without the URLs' passwords.
impl fmt::Debug for Deployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deployment")
            .field("database_url", &crate::redact_url(&self.database_url))
            .field("redis_url", &crate::redact_url(&self.redis_url))
            .field("queue", &self.queue)
            .field("environment", &self.environment)
            .field("log_filter", &self.log_filter)
            .field("log_format", &self.log_format)
            .finish()
    }
}

impl Deployment {
    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

/// The reservation rules a deployment sets. Both binaries read them: the
/// server for every hold it makes, the worker for the holds it hands to
/// whoever waits in line. The defaults are `Policy::default()`'s, so that
/// they are written once, in the domain, and `--help` shows them from there.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Rules {
    /// Hold time of a reservation (humantime: 90s, 15m, 24h).
    #[arg(long, env = "HOLDFAST_RESERVATION_TTL", default_value_t = HumanDuration(Policy::default().ttl), value_parser = parse_hold_time, global = true)]
    pub reservation_ttl: HumanDuration,

    /// How often one reservation may be extended.
    #[arg(long, env = "HOLDFAST_MAX_EXTENSIONS", default_value_t = Policy::default().max_extensions, global = true)]
    pub max_extensions: u32,

    /// Active reservations one agent may hold at once; 0 means no limit.
    #[arg(long, env = "HOLDFAST_MAX_ACTIVE_PER_AGENT", default_value_t = Policy::default().max_active_per_agent, global = true)]
    pub max_active_per_agent: u32,

    /// How long before a hold's end its agent gets an EXPIRING hold event
    /// (`off`: none); a hold no longer than this gets none.
    #[arg(long, env = "HOLDFAST_EXPIRY_WARNING", default_value_t = DurationOrOff(Policy::default().expiry_warning), global = true)]
    pub expiry_warning: DurationOrOff,

    /// Entries that may wait in line for one property; 0 turns the line off
    /// (joinQueue answers QUEUE_FULL).
    #[arg(long, env = "HOLDFAST_MAX_QUEUE_LENGTH", default_value_t = Policy::default().max_queue_length, global = true)]
    pub max_queue_length: u32,
}

impl Rules {
    /// The rules as the domain applies them.
    pub fn policy(&self) -> Policy {
        Policy {
            ttl: self.reservation_ttl.0,
            max_extensions: self.max_extensions,
            max_active_per_agent: self.max_active_per_agent,
            expiry_warning: self.expiry_warning.0,
            max_queue_length: self.max_queue_length,
            // On in the server: see `Policy::one_round_trip`.
            one_round_trip: true,
        }
    }
}

impl Default for Rules {
    fn default() -> Self {
        let policy = Policy::default();
        Self {
            reservation_ttl: HumanDuration(policy.ttl),
            max_extensions: policy.max_extensions,
            max_active_per_agent: policy.max_active_per_agent,
            expiry_warning: DurationOrOff(policy.expiry_warning),
            max_queue_length: policy.max_queue_length,
        }
    }
}

/// A duration read and shown in humantime's form (`90s`, `15m`, `24h`), so
/// that a default given as a `Duration` reads in `--help` as it is written
/// in the documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        Self(d)
    }
}

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Self {
        d.0
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(s)
            .map(Self)
            .map_err(|e| format!("{e} (expected a duration such as 90s, 15m or 24h)"))
    }
}

impl fmt::Display for HumanDuration {
    /// In the largest unit that states it whole (`24h`, not humantime's
    /// `1day`); anything else as humantime writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        for (unit, suffix) in [
            (3_600_000_000_000, "h"),
            (60_000_000_000, "m"),
            (1_000_000_000, "s"),
            (1_000_000, "ms"),
        ] {
            if nanos >= unit && nanos.is_multiple_of(unit) {
                return write!(f, "{}{suffix}", nanos / unit);
            }
        }
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// A duration that may be switched off: `off`, or humantime's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationOrOff(pub Option<Duration>);

impl FromStr for DurationOrOff {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("off") {
            return Ok(Self(None));
        }
        match s.parse::<HumanDuration>() {
            Ok(d) if d.0.is_zero() => Err("must be longer than zero, or `off`".into()),
            Ok(d) => Ok(Self(Some(d.0))),
            Err(e) => Err(format!("{e}, or `off`")),
        }
    }
}

impl fmt::Display for DurationOrOff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(d) => HumanDuration(d).fmt(f),
            None => f.write_str("off"),
        }
    }
}

/// Any duration setting: humantime's form.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    s.parse::<HumanDuration>().map(Duration::from)
}

/// A duration longer than zero: a hold time, a token's lifetime.
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

/// A hold time: a duration longer than zero.
fn parse_hold_time(s: &str) -> Result<HumanDuration, String> {
    parse_positive_duration(s).map(HumanDuration)
}

fn parse_database_url(s: &str) -> Result<String, String> {
    if !(s.starts_with("postgres://") || s.starts_with("postgresql://")) {
        return Err("not a PostgreSQL URL: it must start with postgres://".into());
    }
    sea_orm::sqlx::postgres::PgConnectOptions::from_str(s)
        .map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
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

fn parse_log_filter(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(s).map_err(|e| format!("not a log filter: {e}"))?;
    Ok(s.to_owned())
}

/// Why a program stops before it starts: a bad setting (one line naming it,
/// exit code 2), or `--help` / `--version` (clap's text, exit code 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub message: String,
    pub exit_code: u8,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SettingsError {}

impl SettingsError {
    /// A value that parsed but cannot be used, or does not fit with the
    /// others: `setting` as `setting_name` writes it.
    pub fn invalid(setting: &str, why: impl fmt::Display) -> Self {
        Self {
            message: format!("invalid {setting}: {why}"),
            exit_code: 2,
        }
    }

    /// clap's error for `command` in one line that names the setting;
    /// help and version as clap writes them.
    pub fn from_clap(err: &clap::Error, command: &Command) -> Self {
        match err.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Self {
                message: err.render().to_string(),
                exit_code: 0,
            },
            // The help itself is the message: it spans lines by nature.
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => Self {
                message: err.render().to_string(),
                exit_code: 2,
            },
            ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
                let arg = match err.get(ContextKind::InvalidArg) {
                    Some(ContextValue::String(arg)) => arg.clone(),
                    _ => String::from("a setting"),
                };
                let value = match err.get(ContextKind::InvalidValue) {
                    Some(ContextValue::String(v)) => v.clone(),
                    _ => String::new(),
                };
                let why = match (
                    std::error::Error::source(err),
                    err.get(ContextKind::ValidValue),
                ) {
                    (Some(source), _) => source.to_string(),
                    (None, Some(ContextValue::Strings(valid))) => {
                        format!("expected one of {}", valid.join(", "))
                    }
                    _ => "not a valid value".to_owned(),
                };
                Self::invalid(&name_of(command, &arg), format!("{value:?}: {why}"))
            }
            _ => {
                // clap spreads one error over several lines (the missing
                // arguments, a tip, the usage): keep what names the problem.
                let rendered = err.render().to_string();
                let message: Vec<&str> = rendered
                    .lines()
                    .map(str::trim)
                    .take_while(|l| {
                        !l.starts_with("Usage:") && !l.starts_with("For more information")
                    })
                    .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
                    .collect();
                Self {
                    message: message.join(" ").trim_start_matches("error: ").to_owned(),
                    exit_code: 2,
                }
            }
        }
    }

    /// Prints the error as `program` (help and version on stdout, a bad
    /// setting on stderr) and gives the exit code to stop with.
    pub fn report(&self, program: &str) -> ExitCode {
        if self.exit_code == 0 {
            print!("{}", self.message);
        } else {
            eprintln!("{program}: {}", self.message.trim_end());
        }
        ExitCode::from(self.exit_code)
    }
}

/// Reads `P` from the command line `args` (the program's name first) and
/// the environment.
pub fn parse<P, I, T>(args: I) -> Result<P, SettingsError>
where
    P: clap::Parser,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    P::try_parse_from(args).map_err(|e| SettingsError::from_clap(&e, &P::command()))
}

/// How an error names a setting: `HOLDFAST_RESERVATION_TTL (--reservation-ttl)`.
pub fn setting_name(env: &str, flag: &str) -> String {
    format!("{env} ({flag})")
}

/// The setting clap calls `--reservation-ttl <RESERVATION_TTL>`, named by
/// its variable and flag; in a subcommand too.
fn name_of(command: &Command, arg: &str) -> String {
    let flag = arg.split_whitespace().next().unwrap_or(arg);
    let long = flag.trim_start_matches("--");
    match find_env(command, long) {
        Some(env) => setting_name(&env, flag),
        None => flag.to_owned(),
    }
}

fn find_env(command: &Command, long: &str) -> Option<String> {
    command
        .get_arguments()
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
        .or_else(|| {
            command
                .get_subcommands()
                .find_map(|sub| find_env(sub, long))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Both {
        #[command(flatten)]
        deployment: Deployment,
        #[command(flatten)]
        rules: Rules,
    }

    fn parse_both(args: &[&str]) -> Result<Both, SettingsError> {
        parse(std::iter::once("test").chain(args.iter().copied()))
    }

    #[test]
    fn the_defaults_are_those_of_the_domain_and_of_default() {
        let both = parse_both(&[]).expect("defaults");
        assert_eq!(both.rules, Rules::default());
        assert_eq!(both.rules.policy().ttl, Policy::default().ttl);
        assert_eq!(both.deployment.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(both.deployment.log_format, LogFormat::Pretty);
    }

    #[test]
    fn a_duration_shows_as_it_is_written() {
        for (d, shown) in [
            (Duration::from_secs(24 * 3600), "24h"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(15 * 60), "15m"),
            (Duration::from_millis(1500), "1500ms"),
        ] {
            assert_eq!(HumanDuration(d).to_string(), shown);
            assert_eq!(shown.parse::<HumanDuration>(), Ok(HumanDuration(d)));
        }
    }

    #[test]
    fn a_bad_value_is_one_line_naming_the_variable_and_the_flag() {
        for (args, setting) in [
            (
                &["--reservation-ttl", "banana"][..],
                "HOLDFAST_RESERVATION_TTL (--reservation-ttl)",
            ),
            (&["--reservation-ttl", "0s"], "HOLDFAST_RESERVATION_TTL"),
            (&["--max-extensions", "many"], "HOLDFAST_MAX_EXTENSIONS"),
            (&["--database-url", "mysql://x"], "DATABASE_URL"),
            (&["--redis-url", "http://x"], "REDIS_URL"),
            (&["--queue", "a b"], "HOLDFAST_QUEUE"),
            (&["--log", "holdfast=loud"], "RUST_LOG"),
            (&["--log-format", "xml"], "HOLDFAST_LOG_FORMAT"),
            (&["--env", "staging"], "HOLDFAST_ENV (--env)"),
        ] {
            let err = parse_both(args).expect_err("a bad value");
            assert_eq!(err.exit_code, 2, "{args:?}");
            assert!(!err.message.contains('\n'), "{}", err.message);
            assert!(err.message.contains(setting), "{args:?}: {}", err.message);
        }
    }

    #[test]
    fn help_is_not_an_error_of_the_settings() {
        let err = parse_both(&["--help"]).expect_err("help");
        assert_eq!(err.exit_code, 0);
        assert!(err.message.contains("[default: 24h]"), "{}", err.message);
    }
}
