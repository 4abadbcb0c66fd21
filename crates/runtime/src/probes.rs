//! `/healthz`, `/readyz` and `/metrics`, the same in both binaries, so that
//! one probe configuration and one dashboard fit either:
//!
//! - `/healthz`: 200 while the process runs;
//! - `/readyz`: 200 when PostgreSQL and Redis answer, else 503; either way
//!   `{"status": "ready" | "unavailable", "down": [...], "checks": {"postgres":
//!   {"status": "up"}, "redis": {"status": "down", "error": "..."}}}`, each
//!   check bounded by `CHECK_TIMEOUT`;
//! - `/metrics`: the process's Prometheus text (`metrics::recorder`), with
//!   the pool and due-jobs gauges read at scrape time.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use holdfast_queue::ReleaseQueue;
use sea_orm::DatabaseConnection;
use serde_json::json;

use crate::metrics;

/// How long a probe waits for each dependency: a probe must answer quickly,
/// whatever PostgreSQL or Redis do.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the probes look at.
#[derive(Clone)]
pub struct Probes {
    pub db: DatabaseConnection,
    pub queue: ReleaseQueue,
}

/// The three routes, to merge into any router (whatever its state).
pub fn routes<S>(probes: Probes) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let (ready, scrape) = (probes.clone(), probes);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(move || readyz(ready.clone())))
        .route("/metrics", get(move || render_metrics(scrape.clone())))
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Waits at most `CHECK_TIMEOUT` for `check`.
async fn bounded<E: std::fmt::Display>(
    check: impl Future<Output = Result<(), E>>,
) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
    }
}

async fn readyz(probes: Probes) -> Response {
    let (postgres, redis) = tokio::join!(bounded(probes.db.ping()), bounded(probes.queue.ping()));
    let mut down = Vec::new();
    let mut checks = serde_json::Map::new();
    for (name, result) in [("postgres", postgres), ("redis", redis)] {
        match result {
            Ok(()) => {
                checks.insert(name.into(), json!({ "status": "up" }));
            }
            Err(error) => {
                tracing::warn!(dependency = name, %error, "not ready");
                down.push(name);
                checks.insert(name.into(), json!({ "status": "down", "error": error }));
            }
        }
    }
    let (status, word) = if down.is_empty() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    let body = json!({ "status": word, "down": down, "checks": checks });
    (status, Json(body)).into_response()
}

async fn render_metrics(probes: Probes) -> Response {
    metrics::observe_pool(&probes.db);
    if let Ok(Ok(due)) = tokio::time::timeout(CHECK_TIMEOUT, probes.queue.jobs_due()).await {
        metrics::observe_jobs_due(due);
    }
    let recorder = metrics::recorder();
    recorder.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        recorder.render(),
    )
        .into_response()
}
