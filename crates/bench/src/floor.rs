//! `holdfast-bench floor-server`: the floor of the fixed stack, for
//! `BENCH_FLOOR=1`. It answers the load generator's `reserveProperty` the way
//! holdfast-server does underneath GraphQL: the same token check, the same
//! domain `reserve` on a pool with the server's settings, and after the
//! commit the same release job and change event. What it leaves out is
//! async-graphql (parsing, validation, execution, response building), the
//! live-update subscription, metrics and request spans; the request body is
//! read with serde_json and the answer written by hand in GraphQL's shape.
//!
//! Spread against it, next to spread against the real server in the same
//! round, shows how much of the reserve ratio the GraphQL layer costs, and
//! what axum, sqlx and Redis alone allow on the same machine. It is not a
//! server for anything else: it answers only `reserveProperty` and a
//! project's counters (which the invariant check reads).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::routing::post;
use axum::{Json, Router};
use holdfast_domain::{Caller, DomainError, Policy, ProjectId, PropertyId, reads, reservations};
use holdfast_queue::ReleaseQueue;
use holdfast_runtime::Outbox;
use holdfast_server::auth::{Tokens, bearer, verify_bearer};
use holdfast_server::error::{Code, domain_code};
use holdfast_server::{Config, app};
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use serde_json::{Value, json};

/// Everything a request needs, built once.
struct Floor {
    db: DatabaseConnection,
    policy: Policy,
    tokens: Tokens,
    outbox: Outbox,
}

/// The part of a GraphQL request the floor reads.
#[derive(Deserialize)]
struct Request {
    query: String,
    #[serde(default)]
    variables: Variables,
}

#[derive(Default, Deserialize)]
struct Variables {
    id: Option<String>,
}

/// The server's own settings, read from the environment by the server's own
/// parser, so that the floor runs with what `holdfast-server serve` would.
#[derive(clap::Parser)]
struct Settings {
    #[command(flatten)]
    config: Config,
}

/// The settings of `holdfast-server serve` in this environment, checked.
pub fn config_from_env() -> anyhow::Result<Config> {
    let settings = <Settings as clap::Parser>::try_parse_from(["holdfast-bench floor-server"])?;
    settings.config.validate()?;
    Ok(settings.config)
}

/// The floor bound to its address, ready to serve (as the server's
/// `Application`, so the binary and the smoke test start it the same way).
pub struct FloorServer {
    listener: tokio::net::TcpListener,
    router: Router,
}

impl FloorServer {
    /// Builds the floor over `config` (its database, Redis, queue, secret,
    /// pool size and reservation policy, as the server reads them) and binds
    /// `config.listen`.
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        let deployment = &config.deployment;
        let queue =
            ReleaseQueue::new(&deployment.redis_url, &deployment.queue).context("REDIS_URL")?;
        let policy = config.rules.policy();
        let floor = Floor {
            db: app::connect_db(config).await?,
            outbox: Outbox::new(queue, policy.clone()),
            policy,
            tokens: app::tokens(config),
        };
        let router = Router::new()
            .route("/graphql", post(answer))
            .with_state(Arc::new(floor));
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("HOLDFAST_LISTEN: cannot bind {}", config.listen))?;
        Ok(Self { listener, router })
    }

    pub fn addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// Binds `config.listen`, prints the address as the server does, and serves
/// until the process is stopped.
pub async fn serve(config: &Config) -> anyhow::Result<()> {
    // The server's logging, so that a release job or change event that could
    // not be sent is seen in the floor's log as in the server's.
    config.init_logging();
    let floor = FloorServer::bind(config).await?;
    println!("floor server listening on http://{}/graphql", floor.addr()?);
    floor.run_until(std::future::pending()).await?;
    Ok(())
}

async fn answer(State(floor): State<Arc<Floor>>, headers: HeaderMap, body: Bytes) -> Json<Value> {
    let Ok(request) = serde_json::from_slice::<Request>(&body) else {
        return refused(Code::BadUserInput, "the body is not a GraphQL request");
    };
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    let caller = match bearer(header).and_then(|token| verify_bearer(&floor.tokens, token)) {
        Ok(caller) => caller,
        Err(_) => return refused(Code::Unauthenticated, "a valid bearer token is required"),
    };
    let Some(Ok(id)) = request.variables.id.as_deref().map(uuid::Uuid::parse_str) else {
        return refused(Code::BadUserInput, "variables.id must be an id");
    };
    if request.query.contains("reserveProperty") {
        reserve(&floor, caller, PropertyId(id)).await
    } else if request.query.contains("availablePlots") {
        counters(&floor, caller, ProjectId(id)).await
    } else {
        refused(
            Code::BadUserInput,
            "the floor server answers only reserveProperty and a project's counters",
        )
    }
}

async fn reserve(floor: &Floor, caller: Caller, property_id: PropertyId) -> Json<Value> {
    let written = reservations::reserve(&floor.db, &floor.policy, caller, property_id).await;
    floor.outbox.after_commit(&written.effects).await;
    let hold = match written.result {
        Ok(hold) => hold,
        Err(err) => return failed(&err),
    };
    let r = &hold.reservation;
    Json(json!({ "data": { "reserveProperty": {
        "id": r.id.to_string(),
        "status": "ACTIVE",
        "expiresAt": r.expires_at.to_rfc3339(),
    } } }))
}

async fn counters(floor: &Floor, caller: Caller, project: ProjectId) -> Json<Value> {
    match reads::plot_counts(&floor.db, caller.workspace_id, &[project]).await {
        Ok(counts) => {
            let c = counts.get(&project).copied().unwrap_or_default();
            Json(json!({ "data": { "project": {
                "totalPlots": c.total,
                "availablePlots": c.available,
                "reservedPlots": c.reserved,
                "soldPlots": c.sold,
            } } }))
        }
        Err(err) => failed(&err),
    }
}

fn failed(err: &DomainError) -> Json<Value> {
    refused(domain_code(err), &err.to_string())
}

fn refused(code: Code, message: &str) -> Json<Value> {
    Json(json!({
        "data": null,
        "errors": [{ "message": message, "extensions": { "code": code.as_str() } }],
    }))
}
