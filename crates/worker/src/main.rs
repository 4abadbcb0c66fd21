//! The `holdfast-worker` binary: read the settings, start the worker, stop
//! on SIGTERM or SIGINT.

use std::process::ExitCode;

use holdfast_runtime::logging::{self, LogStream};
use holdfast_runtime::shutdown_signal;
use holdfast_worker::{App, Config};

const PROGRAM: &str = "holdfast-worker";

fn main() -> ExitCode {
    let config = match Config::load(std::env::args_os()) {
        Ok(config) => config,
        Err(e) => return e.report(PROGRAM),
    };
    logging::init(
        &config.deployment.log_filter,
        config.deployment.log_format,
        LogStream::Stdout,
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{PROGRAM}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let app = match App::build(config).await {
            Ok(app) => app,
            Err(e) => {
                // A setting that is well-formed but unusable (an address
                // already in use): one line, exit code 2.
                eprintln!("{PROGRAM}: {e:#}");
                return ExitCode::from(2);
            }
        };
        match app.run_until(shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "holdfast-worker failed");
                ExitCode::FAILURE
            }
        }
    })
}
