//! Logs: tracing, filtered by `RUST_LOG`, pretty or one JSON object per
//! line, to the stream the binary chooses (the server keeps stdout for
//! command output such as bootstrap's JSON and logs to stderr; the worker
//! logs to stdout).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::settings::LogFormat;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// Installs the process's subscriber; a second call (tests start many apps
/// in one process) changes nothing.
pub fn init(filter: &str, format: LogFormat, stream: LogStream) {
    // The filter was checked when the settings were read.
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let writer = match stream {
        LogStream::Stdout => BoxMakeWriter::new(std::io::stdout),
        LogStream::Stderr => BoxMakeWriter::new(std::io::stderr),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        // Every line names the spans it happened in (request, graphql,
        // release_job, sweep, ...) with their ids.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}
