//! The worker's small HTTP side: `/metrics` (Prometheus text), `/healthz`
//! (200 while the process runs) and `/readyz` (200 when PostgreSQL and Redis
//! answer, 503 with a JSON body naming what is down).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use holdfast_queue::ReleaseQueue;
use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::DatabaseConnection;
use serde_json::json;

/// What the probes look at.
#[derive(Clone)]
pub struct Probes {
    /// Whether the job worker is consuming (false while it restarts after a
    /// Redis outage); shown, not part of readiness.
    pub consuming: Arc<AtomicBool>,
    pub db: DatabaseConnection,
    pub queue: ReleaseQueue,
    pub metrics: PrometheusHandle,
}

pub fn router(probes: Probes) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(probes)
}

async fn metrics(State(p): State<Probes>) -> impl IntoResponse {
    crate::telemetry::observe_pool(&p.db);
    if let Ok(Ok(due)) = tokio::time::timeout(Duration::from_secs(1), p.queue.jobs_due()).await {
        crate::telemetry::observe_jobs_due(due);
    }
    p.metrics.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        p.metrics.render(),
    )
}

async fn readyz(State(p): State<Probes>) -> impl IntoResponse {
    // Both checks at once, each bounded: a probe must answer quickly.
    let bound = Duration::from_secs(2);
    let (pg, redis) = tokio::join!(
        async {
            match tokio::time::timeout(bound, p.db.ping()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {bound:?}")),
            }
        },
        async { p.queue.ping().await.map_err(|e| e.to_string()) },
    );
    let status = |r: &Result<(), String>| match r {
        Ok(()) => json!("ok"),
        Err(e) => json!({ "down": e }),
    };
    let body = json!({
        "status": if pg.is_ok() && redis.is_ok() { "ready" } else { "unavailable" },
        "postgres": status(&pg),
        "redis": status(&redis),
        "jobs": if p.consuming.load(Ordering::Relaxed) { "consuming" } else { "starting" },
    });
    let code = if pg.is_ok() && redis.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}
