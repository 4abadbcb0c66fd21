//! Opening the PostgreSQL pool the way every holdfast process wants it.

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

/// Pool settings; the defaults suit one server or worker process.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a statement may wait for a row lock before it fails (`Busy`).
    pub lock_timeout: Duration,
    /// How long a request waits for a free connection, or for PostgreSQL to
    /// answer a connect, before it fails (`Unavailable`): never hang.
    pub acquire_timeout: Duration,
    /// Longest any single statement may run.
    pub statement_timeout: Duration,
    pub application_name: String,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 32,
            lock_timeout: Duration::from_secs(3),
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            application_name: "holdfast".to_owned(),
        }
    }
}

/// Connects lazily, so a process starts (and reports not ready) while
/// PostgreSQL is down, and reconnects by itself when it is back.
///
/// `lock_timeout` is set once per connection in the startup packet rather than
/// with `SET LOCAL` in every transaction: same bound on every lock wait, one
/// round trip fewer on the reserve path.
pub async fn connect(url: &str, settings: &PoolSettings) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_owned());
    let lock_timeout = format!("{}ms", settings.lock_timeout.as_millis());
    let statement_timeout = format!("{}ms", settings.statement_timeout.as_millis());
    let app = settings.application_name.clone();
    opts.max_connections(settings.max_connections)
        .min_connections(0)
        .acquire_timeout(settings.acquire_timeout)
        .connect_timeout(settings.acquire_timeout)
        .idle_timeout(Duration::from_secs(300))
        // sqlx pings a connection before each use by default: a round trip per
        // transaction. Only ping one that sat idle (it may have been cut).
        .test_before_acquire(false)
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .sqlx_logging(false)
        .connect_lazy(true)
        .map_sqlx_postgres_opts(move |o| {
            o.application_name(&app).options([
                ("lock_timeout", lock_timeout.as_str()),
                ("statement_timeout", statement_timeout.as_str()),
                ("timezone", "UTC"),
            ])
        });
    Database::connect(opts).await
}
