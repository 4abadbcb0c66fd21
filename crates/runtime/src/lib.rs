//! holdfast-runtime: what the server and the worker share to run, written
//! once for both: the settings both read (and how a bad one stops a
//! program), logging, the shutdown signal, `/healthz`, `/readyz` and
//! `/metrics`, the process's Prometheus recorder with the series both
//! report, and the work every write owes after its commit. It knows PostgreSQL, Redis and the reservation rules, never
//! GraphQL or apalis: each binary brings its own work.

pub mod after_commit;
pub mod logging;
pub mod metrics;
pub mod probes;
mod secret;
pub mod settings;
mod shutdown;

pub use after_commit::Outbox;
pub use secret::{Secret, redact_url};
pub use settings::{Deployment, Environment, HumanDuration, LogFormat, Rules, SettingsError};
pub use shutdown::shutdown_signal;
