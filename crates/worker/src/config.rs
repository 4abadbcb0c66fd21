//! The worker's settings: every one an environment variable and a flag of the
//! same meaning (CONTRACT.md, "Configuration"), checked when the process starts.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "holdfast-worker",
    version,
    about = "Releases lapsed holds: runs the delayed release jobs from Redis and the periodic release sweep"
)]
pub struct Config {
    /// PostgreSQL (14 or newer).
    #[arg(long, env = "DATABASE_URL", value_name = "DATABASE_URL",
          default_value = "postgres://postgres@127.0.0.1:5432/holdfast", value_parser = parse_database_url)]
    pub database_url: String,

    /// Redis (6.2 or newer).
    #[arg(long, env = "REDIS_URL", value_name = "REDIS_URL",
          default_value = "redis://127.0.0.1:6379", value_parser = parse_redis_url)]
    pub redis_url: String,

    /// Name of the Redis queue, and prefix of every Redis key the worker writes.
    #[arg(long, env = "HOLDFAST_QUEUE", value_name = "HOLDFAST_QUEUE",
          default_value = "holdfast", value_parser = parse_queue)]
    pub queue: String,

    /// Cron expression with a seconds field (`sec min hour day month weekday`)
    /// for the release sweep, or `off` to run no sweep (tests).
    #[arg(long, env = "HOLDFAST_SWEEP_SCHEDULE", value_name = "HOLDFAST_SWEEP_SCHEDULE",
          default_value = "0 */5 * * * *", value_parser = SweepSchedule::from_str)]
    pub sweep_schedule: SweepSchedule,

    /// Lapsed reservations the sweep ends per transaction.
    #[arg(long, env = "HOLDFAST_SWEEP_BATCH_SIZE", value_name = "HOLDFAST_SWEEP_BATCH_SIZE",
          default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub sweep_batch_size: u32,

    /// Release jobs handled at once by this worker.
    #[arg(long, env = "HOLDFAST_WORKER_CONCURRENCY", value_name = "HOLDFAST_WORKER_CONCURRENCY",
          default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub worker_concurrency: u32,

    /// Where `/metrics`, `/healthz` and `/readyz` are served; port 0 picks a free port.
    #[arg(
        long,
        env = "HOLDFAST_METRICS_LISTEN",
        value_name = "HOLDFAST_METRICS_LISTEN",
        default_value = "127.0.0.1:9091"
    )]
    pub metrics_listen: SocketAddr,

    /// How long a SIGTERM waits for the jobs and the sweep in hand to finish.
    #[arg(long, env = "HOLDFAST_SHUTDOWN_TIMEOUT", value_name = "HOLDFAST_SHUTDOWN_TIMEOUT",
          default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// `development` or `production`.
    #[arg(
        long = "env",
        env = "HOLDFAST_ENV",
        value_name = "HOLDFAST_ENV",
        default_value = "development",
        value_enum
    )]
    pub environment: Environment,

    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "RUST_LOG", value_name = "RUST_LOG", default_value = "info",
          value_parser = parse_log_filter)]
    pub log: String,

    /// `pretty` or `json`.
    #[arg(
        long,
        env = "HOLDFAST_LOG_FORMAT",
        value_name = "HOLDFAST_LOG_FORMAT",
        default_value = "pretty",
        value_enum
    )]
    pub log_format: LogFormat,
}

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

/// When the sweep runs.
#[derive(Debug, Clone)]
pub enum SweepSchedule {
    /// No sweep in this process (tests of the delayed jobs alone).
    Off,
    Cron(Box<cron::Schedule>),
}

impl FromStr for SweepSchedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(SweepSchedule::Off);
        }
        // The cron crate reads 5 fields as if the first were seconds; a
        // crontab-style expression would then fire every minute instead of
        // every 5, silently. Refuse it.
        let fields = s.split_whitespace().count();
        if !(6..=7).contains(&fields) {
            return Err(format!(
                "a cron expression needs a seconds field: 6 fields \
                 (sec min hour day-of-month month day-of-week), got {fields}; \
                 for example `0 */5 * * * *`, or `off`"
            ));
        }
        cron::Schedule::from_str(s)
            .map(|c| SweepSchedule::Cron(Box::new(c)))
            .map_err(|e| format!("not a cron expression: {e}"))
    }
}

fn parse_database_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("postgres://")
        .or_else(|| s.strip_prefix("postgresql://"))
        .ok_or("must start with postgres:// or postgresql://")?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("names no host".to_owned());
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

fn parse_log_filter(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(s).map_err(|e| e.to_string())?;
    Ok(s.to_owned())
}

impl Config {
    /// Reads the settings from the command line and the environment. A bad
    /// value is one line naming the setting and what is wrong; `--help` and
    /// `--version` are the one case of an `Err` with exit code 0.
    pub fn load<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Config::try_parse_from(args).map_err(|e| {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ConfigError {
                    message: e.render().to_string(),
                    exit_code: 0,
                },
                _ => ConfigError {
                    message: one_line(&e.render().to_string()),
                    exit_code: 2,
                },
            }
        })
    }
}

/// clap's first line names the flag and its variable (the value name) and
/// what is wrong; the rest is usage advice.
fn one_line(rendered: &str) -> String {
    rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid settings")
        .trim()
        .to_owned()
}

/// Why the worker cannot start, and with what exit code it stops.
#[derive(Debug)]
pub struct ConfigError {
    pub message: String,
    pub exit_code: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &[&str]) -> Result<Config, ConfigError> {
        Config::load(std::iter::once("holdfast-worker").chain(args.iter().copied()))
    }

    #[test]
    fn a_five_field_cron_expression_is_refused_naming_the_setting() {
        let err = load(&["--sweep-schedule", "*/5 * * * *"]).expect_err("5 fields");
        assert_eq!(err.exit_code, 2);
        assert!(!err.message.contains('\n'), "{}", err.message);
        assert!(
            err.message.contains("HOLDFAST_SWEEP_SCHEDULE"),
            "{}",
            err.message
        );
        assert!(err.message.contains("seconds field"), "{}", err.message);
    }

    #[test]
    fn the_sweep_can_be_switched_off() {
        let c = load(&["--sweep-schedule", "off"]).expect("off");
        assert!(matches!(c.sweep_schedule, SweepSchedule::Off));
        let c = load(&["--sweep-schedule", "*/2 * * * * *"]).expect("cron");
        assert!(matches!(c.sweep_schedule, SweepSchedule::Cron(_)));
    }

    #[test]
    fn bad_values_are_refused() {
        for args in [
            &["--database-url", "mysql://x"][..],
            &["--redis-url", "http://x"],
            &["--queue", "a b"],
            &["--worker-concurrency", "0"],
            &["--metrics-listen", "nowhere"],
            &["--shutdown-timeout", "soon"],
            &["--log-format", "xml"],
        ] {
            let err = load(args).expect_err("bad value");
            assert_eq!(err.exit_code, 2, "{args:?}");
            assert!(!err.message.contains('\n'), "{}", err.message);
        }
    }
}
