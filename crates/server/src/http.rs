//! The HTTP surface: POST /graphql (and GraphiQL on GET in development),
//! GET /graphql/ws (subscriptions), and holdfast-runtime's /healthz, /readyz
//! and /metrics (as the worker serves them), with the body limit, the request id (`x-request-id`, kept from the request or
//! made), a span per request that carries it, and the per-request
//! authentication that GraphQL resolvers read.

use std::time::Instant;

use async_graphql::Pos;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use holdfast_runtime::probes::{self, Probes};
use serde_json::json;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Instrument;

use crate::auth;
use crate::config::HumanDuration;
use crate::deadline::Deadline;
use crate::error::{Code, ensure_coded};
use crate::graphql::snapshot::Reads;
use crate::graphql::{Loaders, RequestAuth};
use crate::live::ws;
use crate::metrics;
use crate::state::{AppState, MAX_BODY_BYTES};

pub fn router(state: AppState, probes: Probes, production: bool) -> Router {
    let graphql = if production {
        // Not 405: in production there is simply nothing to GET here.
        post(graphql).get(|| async { StatusCode::NOT_FOUND })
    } else {
        post(graphql).get(crate::graphiql::page)
    };
    Router::new()
        .route("/graphql", graphql)
        .route("/graphql/ws", get(ws::graphql_ws))
        .merge(probes::routes(probes))
        .merge(crate::board::routes())
        .merge(crate::graphiql::asset_routes(production))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        // Outermost: the id is set before the span is made, and copied to
        // the response whatever the handler answered.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// The span of one HTTP request: every log line of the request carries its id.
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        request.id = %request_id,
        method = %request.method(),
        path = %request.uri().path(),
    )
}

/// A response shaped like a GraphQL one, for requests refused before they
/// reach the schema.
fn refused(status: StatusCode, message: String) -> Response {
    let code = Code::BadUserInput;
    let body = json!({
        "errors": [{
            "message": message,
            "extensions": { "code": code.as_str(), "status": status.as_u16() },
        }]
    });
    (status, Json(body)).into_response()
}

async fn graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    // A body over the limit (or cut short) gets a coded answer too.
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return refused(rejection.status(), rejection.body_text()),
    };
    let mut request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return refused(
                StatusCode::BAD_REQUEST,
                format!("the body is not a GraphQL request in JSON: {e}"),
            );
        }
    };

    // Depth, introspection's cost and page lengths, before anything runs.
    if let Err(refusal) = state.documents.prepare(&mut request) {
        metrics::graphql_request(started.elapsed());
        return Json(async_graphql::Response::from_errors(vec![refusal])).into_response();
    }

    let span = tracing::info_span!(
        "graphql",
        operation = request.operation_name.as_deref().unwrap_or(""),
        user.id = tracing::field::Empty,
        workspace.id = tracing::field::Empty,
    );
    let header = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    // The token is checked here; its user and workspace are loaded by the
    // first resolver that needs them (RequestAuth).
    let request =
        match auth::bearer(header).and_then(|token| auth::verify_bearer(&state.tokens, token)) {
            Ok(caller) => {
                span.record("user.id", tracing::field::display(caller.user_id));
                span.record("workspace.id", tracing::field::display(caller.workspace_id));
                let reads = Reads::for_request(state.db.clone(), &mut request);
                let loaders = Loaders::for_request(reads.clone(), caller.workspace_id);
                request
                    .data(RequestAuth::claimed(state.db.clone(), caller))
                    .data(reads)
                    .data(loaders)
            }
            Err(e) => {
                let _entered = span.enter();
                request.data(RequestAuth::refused(e))
            }
        };

    // HOLDFAST_REQUEST_TIMEOUT (deadline.rs): writes must commit a second
    // before it; the rest is dropped at it, a transaction in flight with it.
    let deadline = Deadline::after(started, state.request_timeout);
    let request = request.data(deadline.clone());
    let execution = state.schema.execute(request).instrument(span.clone());
    let mut response = match tokio::time::timeout_at(deadline.at(), execution).await {
        Ok(response) => response,
        Err(_) => {
            deadline.miss();
            async_graphql::Response::from_errors(vec![
                deadline.error().into_server_error(Pos::default()),
            ])
        }
    };
    for err in &mut response.errors {
        ensure_coded(err);
    }
    let elapsed = started.elapsed();
    if deadline.missed() {
        span.in_scope(|| {
            tracing::warn!(
                timeout = %HumanDuration(deadline.timeout()),
                elapsed_ms = elapsed.as_millis() as u64,
                "the request timed out: answered SERVICE_UNAVAILABLE, and what it had not committed was rolled back"
            );
        });
        metrics::request_timeout();
    }
    metrics::graphql_request(elapsed);
    Json(response).into_response()
}
