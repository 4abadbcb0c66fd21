//! Building and running the server: what the binary's `serve` does, and what
//! tests start on 127.0.0.1:0 with a config of their own.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::Context as _;
use axum::Router;
use holdfast_domain::db::{self, PoolSettings};
use holdfast_queue::ReleaseQueue;
use holdfast_runtime::Outbox;
use holdfast_runtime::probes::Probes;
use sea_orm::DatabaseConnection;

use crate::auth::Tokens;
use crate::config::Config;
use crate::graphql::{self, Services};
use crate::http;
use crate::live::Hub;
use crate::live::connections::Connections;
use crate::metrics;
use crate::state::AppState;

/// The pool settings a config asks for.
pub fn pool_settings(config: &Config) -> PoolSettings {
    PoolSettings {
        max_connections: config.db_max_connections,
        lock_timeout: config.lock_timeout.into(),
        acquire_timeout: config.db_timeout.into(),
        application_name: "holdfast-server".to_owned(),
        ..PoolSettings::default()
    }
}

/// The pool settings of a serving server: no statement outlives the request
/// that sent it, so PostgreSQL stops working for a client that gave up.
pub fn serving_pool_settings(config: &Config) -> PoolSettings {
    PoolSettings {
        statement_timeout: config.request_timeout.into(),
        ..pool_settings(config)
    }
}

/// The lazy PostgreSQL pool of a command (bootstrap, audit, ...): the server
/// starts (and reports not ready) while the database is down.
pub async fn connect_db(config: &Config) -> anyhow::Result<DatabaseConnection> {
    db::connect(&config.deployment.database_url, &pool_settings(config))
        .await
        .context("DATABASE_URL")
}

/// The signing keys, warning when they are the development default.
pub fn tokens(config: &Config) -> Tokens {
    let (secret, is_default) = config.jwt_secret();
    if is_default {
        tracing::warn!(
            "HOLDFAST_JWT_SECRET is not set: using the development secret; anyone can mint tokens"
        );
    }
    Tokens::new(secret.as_bytes())
}

/// A server bound to its address, ready to run.
pub struct Application {
    listener: tokio::net::TcpListener,
    router: Router,
    addr: SocketAddr,
    statements: Arc<AtomicU64>,
    ws: Connections,
}

impl Application {
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        config.validate()?;
        let mut db = db::connect(
            &config.deployment.database_url,
            &serving_pool_settings(config),
        )
        .await
        .context("DATABASE_URL")?;
        let statements = metrics::count_statements(&mut db);
        let deployment = &config.deployment;
        let queue =
            ReleaseQueue::new(&deployment.redis_url, &deployment.queue).context("REDIS_URL")?;
        let tokens = tokens(config);
        let policy = config.rules.policy();
        let services = Services {
            db: db.clone(),
            outbox: Outbox::new(queue.clone(), policy.clone()),
            policy,
            tokens: tokens.clone(),
            request_timeout: config.request_timeout.into(),
        };
        // One Redis subscription for the whole process, started now so that
        // the first subscriber misses nothing published after it is told
        // it is subscribed.
        let ws = Connections::default();
        let hub = Hub::start(
            deployment.redis_url.clone(),
            deployment.queue.clone(),
            config.subscriber_buffer,
        );
        // Give it a moment, so that a subscription right after start is not
        // refused; with Redis down, start anyway (and report not ready).
        if !hub.wait_connected(std::time::Duration::from_secs(1)).await {
            tracing::warn!("live updates are not available yet: Redis does not answer");
        }
        metrics::describe();
        let probes = Probes {
            db: db.clone(),
            queue,
        };
        let state = AppState {
            schema: graphql::schema(services, hub, config.is_production()),
            db,
            tokens,
            ws: ws.clone(),
            documents: Default::default(),
            request_timeout: config.request_timeout.into(),
        };
        let router = http::router(state, probes, config.is_production());
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("HOLDFAST_LISTEN: cannot bind {}", config.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "listening on http://{addr}/graphql");
        Ok(Self {
            listener,
            router,
            addr,
            statements,
            ws,
        })
    }

    /// The address bound (the real port when the config asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many SQL statements this app has run so far: shows whether a
    /// request's cost grows with the length of a list.
    pub fn statement_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.statements)
    }

    /// Serves until `shutdown` completes, then lets in-flight requests
    /// finish, and closes subscription connections with 1001 (going away)
    /// so that their clients reconnect elsewhere.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let ws = self.ws.clone();
        let shutdown = async move {
            shutdown.await;
            tracing::info!("finishing in-flight requests");
            ws.go_away();
        };
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await;
        // Upgraded connections are not among axum's in-flight requests:
        // give their close frames a moment to go out.
        self.ws.wait_closed(std::time::Duration::from_secs(3)).await;
        served
    }
}
