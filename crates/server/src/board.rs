//! `GET /board`: the availability board, a static page (HTML, CSS and a little
//! JavaScript, embedded at build time) that reads and changes plots through the
//! public GraphQL API and follows `propertyChanged` over `/graphql/ws`. It
//! holds no data of its own: the bearer token the user gives it authorises
//! every request, so it is served in production too.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const PAGE: &str = include_str!("../assets/board.html");
const STYLE: &str = include_str!("../assets/board.css");
const SCRIPT: &str = include_str!("../assets/board.js");

/// Only our own script, style and API: no inline code, no other origin, no
/// framing. `'self'` in `connect-src` also covers the same-origin WebSocket.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// The board's routes: the page and its two assets.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/board",
            get(|| async { asset("text/html; charset=utf-8", PAGE) }),
        )
        .route(
            "/board/board.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/board/board.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            // Small and changed with each release: always revalidate.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}
