//! The HTTP surface: limits, malformed bodies, GraphiQL, health, readiness
//! and metrics.

use serde_json::{Value, json};

use crate::helpers::{assert_error, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_body_over_one_mebibyte_is_refused() {
    let app = spawn_app().await;
    let padding = "x".repeat(1024 * 1024 + 10);
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(json!({ "query": "{ me { id } }", "variables": { "pad": padding } }).to_string())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn malformed_json_is_a_400() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body("{ \"query\": ")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("a JSON body");
    assert_error(&body, "BAD_USER_INPUT", 400);
}

#[tokio::test]
async fn graphiql_and_introspection_are_on_in_development() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'self';"),
        "{csp}"
    );
    let html = response.text().await.expect("html");
    assert!(html.to_lowercase().contains("graphiql"), "{html}");
    // Its scripts come from the server itself, not from a CDN.
    assert!(!html.contains("https://"), "{html}");
    let script = app
        .client
        .get(app.url("/graphql/assets/graphiql.min.js"))
        .send()
        .await
        .expect("send");
    assert_eq!(script.status(), 200);
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    // GraphiQL loads the schema before a token is pasted.
    let body = app
        .gql(None, "{ __schema { queryType { name } } }", json!({}))
        .await;
    assert_eq!(
        body["data"]["__schema"]["queryType"]["name"],
        json!("Query")
    );
}

#[tokio::test]
async fn graphiql_is_404_and_introspection_off_in_production() {
    let app = spawn_app_with(|c| {
        c.deployment.environment = holdfast_server::config::Environment::Production
    })
    .await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 404);
    let script = app
        .client
        .get(app.url("/graphql/assets/graphiql.min.js"))
        .send()
        .await
        .expect("send");
    assert_eq!(script.status(), 404);
    let body = app
        .gql(None, "{ __schema { queryType { name } } }", json!({}))
        .await;
    assert!(body["data"]["__schema"].is_null(), "{body}");
}

#[tokio::test]
async fn healthz_is_200() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn readyz_is_200_when_postgres_and_redis_answer() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn readyz_is_503_naming_redis_when_redis_is_down() {
    let app = spawn_app_with(|c| c.deployment.redis_url = "redis://127.0.0.1:1".into()).await;
    let response = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["down"], json!(["redis"]), "{body}");
}

#[tokio::test]
async fn readyz_is_503_naming_postgres_when_postgres_is_down() {
    let app = spawn_app_with(|c| {
        c.deployment.database_url = "postgres://postgres@127.0.0.1:1/holdfast".into();
        c.db_timeout = std::time::Duration::from_secs(1).into();
    })
    .await;
    let response = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["down"], json!(["postgres"]), "{body}");
}

#[tokio::test]
async fn metrics_are_served_in_prometheus_text_format() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    app.ok(&ws.admin.token, "{ me { id } }", json!({})).await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains("holdfast_graphql_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn a_query_nested_too_deep_is_refused() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let deep = "{ me { activeReservations { property { project { properties { nodes { activeReservation { \
                agent { activeReservations { property { project { properties { nodes { code } } } } } } } } } } } } } }";
    let body = app.gql(Some(&ws.admin.token), deep, json!({})).await;
    assert_error(&body, "BAD_USER_INPUT", 400);
    let costly = "{ properties(first: 100) { nodes { reservations(first: 100) { nodes { property { reservations(first: 100) { nodes { id } } } } } } } }";
    let body = app.gql(Some(&ws.admin.token), costly, json!({})).await;
    assert_error(&body, "BAD_USER_INPUT", 400);
}
