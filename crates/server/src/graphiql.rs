//! `GET /graphql` in development: GraphiQL, served from the binary itself so
//! that it works offline. Its scripts and styles are the npm packages' own
//! browser builds, checked in under `assets/graphiql/vendor` by
//! `scripts/update-graphiql.sh` (which says where each file came from) and
//! embedded at build time; `assets/graphiql/start.js` wires GraphiQL to
//! `/graphql` and `/graphql/ws`. In production none of it is served.

use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

const PAGE: &str = include_str!("../assets/graphiql/index.html");

/// The files under `/graphql/assets/`, by name.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "start.js",
        JAVASCRIPT,
        include_bytes!("../assets/graphiql/start.js"),
    ),
    (
        "page.css",
        CSS,
        include_bytes!("../assets/graphiql/page.css"),
    ),
    (
        "graphiql.min.js",
        JAVASCRIPT,
        include_bytes!("../assets/graphiql/vendor/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        CSS,
        include_bytes!("../assets/graphiql/vendor/graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        JAVASCRIPT,
        include_bytes!("../assets/graphiql/vendor/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        JAVASCRIPT,
        include_bytes!("../assets/graphiql/vendor/react-dom.production.min.js"),
    ),
    (
        "graphql-ws.min.js",
        JAVASCRIPT,
        include_bytes!("../assets/graphiql/vendor/graphql-ws.min.js"),
    ),
];

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Only this server: its scripts, styles and API, nothing from another
/// origin, no framing. What GraphiQL needs beyond the board's policy
/// (`board.rs`), and why:
/// - `font-src data:`: graphiql.min.css embeds its fonts as `data:` URLs;
/// - `img-src data:`: so do a few of its icons;
/// - on the page, `style-src 'nonce-...'`: its dialogs add one `<style>`
///   element (react-remove-scroll's), which they mark with the nonce that
///   `start.js` hands them. A nonce, made for each response, rather than
///   `'unsafe-inline'`: no other inline style can apply.
///
/// It needs no `'unsafe-eval'` (no `eval` or `new Function` in the bundles)
/// and no inline script. React sets element styles through the CSSOM, which
/// a policy does not restrict. `'self'` in `connect-src` covers the
/// same-origin WebSocket of subscriptions. The browser test fails on any
/// violation of the policy.
fn policy(style_nonce: Option<&str>) -> String {
    let nonce = style_nonce.map_or_else(String::new, |n| format!(" 'nonce-{n}'"));
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'{nonce}; font-src data:; \
         img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    )
}

/// The policy of the scripts and styles (it matters little on them, but
/// says what they may do if opened directly).
fn policy_for_assets() -> &'static str {
    static POLICY: LazyLock<String> = LazyLock::new(|| policy(None));
    &POLICY
}

/// The page's placeholder for its nonce, in `start.js`'s tag.
const NONCE_PLACEHOLDER: &str = "STYLE_NONCE";

/// `GET /graphql`: the GraphiQL page, with a fresh nonce for GraphiQL's
/// style element.
pub async fn page() -> Response {
    // 244 random bits (the CSP spec asks for 128 at least).
    let nonce =
        URL_SAFE_NO_PAD.encode([Uuid::new_v4().into_bytes(), Uuid::new_v4().into_bytes()].concat());
    let html = PAGE.replace(NONCE_PLACEHOLDER, &nonce);
    respond("text/html; charset=utf-8", &policy(Some(&nonce)), html)
}

/// `GET /graphql/assets/{file}`: the page's scripts and styles; none in
/// production, where GraphiQL is off.
pub fn asset_routes<S: Clone + Send + Sync + 'static>(production: bool) -> Router<S> {
    if production {
        return Router::new();
    }
    Router::new().route("/graphql/assets/{file}", get(serve_asset))
}

async fn serve_asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => respond(content_type, policy_for_assets(), *body),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn respond(content_type: &'static str, policy: &str, body: impl Into<Body>) -> Response {
    let Ok(policy) = HeaderValue::from_str(policy) else {
        // A nonce is URL-safe base64: this cannot happen.
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_SECURITY_POLICY, policy),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            // Always revalidated, so that a new build shows at once: in
            // development, on loopback, fetching 1.6 MB again costs little.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body.into(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nonce in a page's policy, and the one in its script tag.
    async fn nonces() -> (String, String) {
        let response = page().await;
        let policy = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("ASCII")
            .to_owned();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("the page");
        let html = String::from_utf8(body.to_vec()).expect("UTF-8");
        let between = |text: &str, from: &str, to: char| {
            let start = text.find(from).expect("a nonce") + from.len();
            text[start..].split(to).next().expect("its end").to_owned()
        };
        (
            between(&policy, "'nonce-", '\''),
            between(&html, "nonce=\"", '"'),
        )
    }

    #[tokio::test]
    async fn each_page_has_a_nonce_of_its_own_in_its_policy_and_its_script_tag() {
        let (policy, tag) = nonces().await;
        assert_eq!(policy, tag);
        assert!(policy.len() >= 40, "over 128 bits: {policy}");
        let (again, _) = nonces().await;
        assert_ne!(policy, again);
        assert!(!policy_for_assets().contains("nonce"));
        assert!(!policy_for_assets().contains("unsafe"));
    }

    #[test]
    fn every_file_the_page_loads_is_served() {
        for src in PAGE
            .split('"')
            .filter_map(|part| part.strip_prefix("/graphql/assets/"))
        {
            assert!(
                ASSETS.iter().any(|(name, _, _)| *name == src),
                "index.html loads /graphql/assets/{src}, which is not served"
            );
        }
    }
}
