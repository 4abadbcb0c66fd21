//! Opening the PostgreSQL pool the way every holdfast process wants it, with
//! the session settings that bound what a frozen or vanished client can cost:
//! PostgreSQL itself ends a transaction whose client stopped talking, and
//! drops a connection whose peer is gone.

use std::time::Duration;

use sea_orm::{
    AccessMode, ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbErr,
    IsolationLevel, TransactionTrait,
};

/// How long PostgreSQL lets a session sit idle inside a transaction before
/// it ends the session (rolling back, and freeing its locks). Every write in
/// a transaction is BEGIN, one call of the rules, COMMIT, each sent the
/// moment the one before answers: a healthy client is idle in a transaction
/// for a round trip, milliseconds. (A reserve sent in one round trip has no
/// idle moment; PostgreSQL refuses it if it arrives this long after it was
/// sent, `rules::ask_at_once`.) Idle for seconds means the client froze or the link went
/// silent, and its transaction holds a plot's row lock that every release
/// and reserve of that plot waits on. Without a bound PostgreSQL keeps that
/// lock as long as the link is silent, in a real partition until TCP
/// keepalive gives up (two hours by default). 5 s frees such a plot soon,
/// while leaving a client on busy cores a thousand times its usual pause.
pub const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(5);

/// TCP keepalive on PostgreSQL's side of each connection: an idle session
/// whose client vanished (a partition, a host gone without a FIN) is probed
/// after 5 s of silence, every 2 s, and dropped once probes go unanswered
/// (3 of them, or `TCP_USER_TIMEOUT` below, which Linux lets override the
/// count): within about 15 s, instead of the kernel's two hours and more.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
const KEEPALIVE_COUNT: u32 = 3;

/// PostgreSQL drops a connection whose sent data stays unacknowledged this
/// long (`tcp_user_timeout`): an answer written into a dead link, which
/// keepalive does not cover (it only probes an idle connection). It also caps
/// the keepalive probing above. 10 s: far beyond any round trip, yet short
/// against the kernel's ~15 minutes of retransmissions.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);

/// While a statement runs (a wait for a row lock, up to `lock_timeout`),
/// PostgreSQL looks every second whether its client closed the connection
/// (`client_connection_check_interval`, PostgreSQL 14+) and stops working
/// for one that did: a server killed, or a connection cut, mid-statement.
const CLIENT_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Pool settings; the defaults suit one server or worker process.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a statement may wait for a row lock before it fails (`Busy`).
    pub lock_timeout: Duration,
    /// How long a request waits for a free connection, or for PostgreSQL to
    /// answer a connect, before it fails (`Unavailable`): never hang.
    pub acquire_timeout: Duration,
    /// Longest any single statement may run; PostgreSQL cancels it then,
    /// whether or not its client still waits.
    pub statement_timeout: Duration,
    /// See [`IDLE_IN_TRANSACTION_TIMEOUT`].
    pub idle_in_transaction_timeout: Duration,
    pub application_name: String,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 32,
            lock_timeout: Duration::from_secs(3),
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            idle_in_transaction_timeout: IDLE_IN_TRANSACTION_TIMEOUT,
            application_name: "holdfast".to_owned(),
        }
    }
}

/// A duration as a PostgreSQL setting takes it, in milliseconds.
fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// Connects lazily, so a process starts (and reports not ready) while
/// PostgreSQL is down, and reconnects by itself when it is back.
///
/// Every timeout is a session setting sent once per connection in the startup
/// packet rather than with `SET LOCAL` in every transaction: the same bounds
/// everywhere, one round trip fewer on the reserve path.
///
/// TCP keepalive and `tcp_user_timeout` are set on PostgreSQL's side only:
/// sqlx (0.9) opens its sockets with a plain `TcpStream::connect` and offers
/// no socket options. The client's side is bounded by time instead: every
/// connect and wait for the pool by `acquire_timeout`, and every use by its
/// caller (the server's request timeout, the worker's job and sweep bounds),
/// which drops a transaction it gave up on. A connection dropped that way
/// goes back to the pool once sqlx has rolled it back, which takes as long
/// as the link stays silent: its pool slot is away meanwhile, but
/// PostgreSQL's session, and the locks it held, end by the settings above.
pub async fn connect(url: &str, settings: &PoolSettings) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_owned());
    let session = [
        ("lock_timeout", ms(settings.lock_timeout)),
        ("statement_timeout", ms(settings.statement_timeout)),
        (
            "idle_in_transaction_session_timeout",
            ms(settings.idle_in_transaction_timeout),
        ),
        ("tcp_keepalives_idle", KEEPALIVE_IDLE.as_secs().to_string()),
        (
            "tcp_keepalives_interval",
            KEEPALIVE_INTERVAL.as_secs().to_string(),
        ),
        ("tcp_keepalives_count", KEEPALIVE_COUNT.to_string()),
        ("tcp_user_timeout", ms(TCP_USER_TIMEOUT)),
        (
            "client_connection_check_interval",
            ms(CLIENT_CHECK_INTERVAL),
        ),
        ("timezone", "UTC".to_owned()),
    ];
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
            o.application_name(&app)
                .options(session.iter().map(|(k, v)| (*k, v.as_str())))
        });
    Database::connect(opts).await
}

/// Begins a transaction that a caller dropped half-way cannot leave open.
///
/// sqlx's `BEGIN` is not safe to cancel: it sends `BEGIN` and waits for the
/// answer, and a caller dropped during that wait (a request cut at its
/// deadline on a slow or silent link) leaves no `ROLLBACK` behind, since
/// sqlx queues one only for a `BEGIN` it has seen answered. The pooled
/// connection then goes back inside an open transaction. The next
/// `BEGIN` ... `COMMIT` on it absorbs that (PostgreSQL only warns), but a
/// statement sent on it in autocommit (creating a user or a project, say)
/// would be answered and never committed, and rolled back when PostgreSQL
/// ends the idle session. Here `BEGIN` (and `SET TRANSACTION`) run in a task
/// of their own, which finishes whatever becomes of the caller; a
/// transaction nobody takes is dropped there, and sqlx rolls it back.
/// Every transaction of holdfast begins here.
pub async fn begin(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    begin_with(db, None, None).await
}

/// [`begin`], with an isolation level and an access mode.
pub async fn begin_with(
    db: &DatabaseConnection,
    isolation: Option<IsolationLevel>,
    access: Option<AccessMode>,
) -> Result<DatabaseTransaction, DbErr> {
    let db = db.clone();
    tokio::spawn(async move { db.begin_with_config(isolation, access).await })
        .await
        .map_err(|e| DbErr::Custom(format!("the task that began a transaction failed: {e}")))?
}
