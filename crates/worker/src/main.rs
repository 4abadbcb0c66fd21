//! The `holdfast-worker` binary: read the settings, start the worker, stop
//! on SIGTERM or SIGINT.

use std::process::ExitCode;

use holdfast_worker::{App, Config, shutdown_signal, telemetry};

fn main() -> ExitCode {
    let config = match Config::load(std::env::args_os()) {
        Ok(config) => config,
        Err(e) if e.exit_code == 0 => {
            print!("{}", e.message);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("holdfast-worker: {}", e.message);
            return ExitCode::from(2);
        }
    };
    telemetry::init_tracing(&config.log, config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("holdfast-worker: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let app = match App::build(config).await {
            Ok(app) => app,
            Err(e) => {
                // A setting that is well-formed but unusable (an address
                // already in use): one line, exit code 2.
                eprintln!("holdfast-worker: {e:#}");
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
