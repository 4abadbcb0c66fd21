//! The worker's settings: every one an environment variable and a flag of the
//! same meaning (README, "Configuration"), checked when the process starts.
//! What the server reads too (where to connect, how to log, the reservation
//! rules) comes from holdfast-runtime, flattened in.

use std::net::SocketAddr;
use std::str::FromStr;

use clap::Parser;
use holdfast_runtime::settings::{self, SettingsError};
pub use holdfast_runtime::{Deployment, Environment, HumanDuration, LogFormat, Rules};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "holdfast-worker",
    version,
    about = "Releases lapsed holds: runs the delayed release jobs from Redis and the periodic release sweep"
)]
pub struct Config {
    #[command(flatten)]
    pub deployment: Deployment,

    /// The reservation rules, as the server reads them: the holds the worker
    /// hands to whoever waits in line follow the same rules.
    #[command(flatten)]
    pub rules: Rules,

    /// Cron expression with a seconds field (`sec min hour day month weekday`)
    /// for the release sweep, or `off` to run no sweep (tests).
    #[arg(long, env = "HOLDFAST_SWEEP_SCHEDULE", default_value = "0 */5 * * * *")]
    pub sweep_schedule: SweepSchedule,

    /// Lapsed reservations the sweep ends per transaction.
    #[arg(long, env = "HOLDFAST_SWEEP_BATCH_SIZE", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub sweep_batch_size: u32,

    /// Release jobs handled at once by this worker.
    #[arg(long, env = "HOLDFAST_WORKER_CONCURRENCY", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub worker_concurrency: u32,

    /// Where `/metrics`, `/healthz` and `/readyz` are served; port 0 picks a free port.
    #[arg(
        long,
        env = "HOLDFAST_METRICS_LISTEN",
        default_value = "127.0.0.1:9091"
    )]
    pub metrics_listen: SocketAddr,

    /// How long a SIGTERM waits for the jobs and the sweep in hand to finish.
    #[arg(long, env = "HOLDFAST_SHUTDOWN_TIMEOUT", default_value = "30s")]
    pub shutdown_timeout: HumanDuration,
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

impl Config {
    /// Reads the settings from the command line and the environment. A bad
    /// value is one line naming the setting and what is wrong; `--help` and
    /// `--version` are the one case of an `Err` with exit code 0.
    pub fn load<I, T>(args: I) -> Result<Config, SettingsError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        settings::parse(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &[&str]) -> Result<Config, SettingsError> {
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
