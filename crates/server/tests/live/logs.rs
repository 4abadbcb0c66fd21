//! JSON logs and request ids: every response carries `x-request-id` (the
//! client's, or a new one), and the log lines of that request carry it too,
//! with the ids of what the request touched.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{BinaryServer, World};

/// Log lines (JSON objects) until one satisfies `want`, within 5 s.
async fn find_line(binary: &BinaryServer, want: impl Fn(&Value, &str) -> bool) -> Value {
    let parse = |line: &str| -> Value {
        serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line is not one JSON object ({e}): {line}"))
    };
    let line = binary
        .logs
        .find(Duration::from_secs(5), |line| want(&parse(line), line))
        .await
        .expect("the log line within 5 s");
    parse(&line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reserve_logs_a_json_line_with_its_request_id_workspace_id_and_property_id() {
    let world = World::new().await;
    let acme = world.workspace("Acme", 2).await;
    let binary = BinaryServer::start(&world, &[]).await;
    let server = binary.server();
    let plot = acme.plot(0, 0);

    let resp = server
        .client
        .post(server.url("/graphql"))
        .bearer_auth(&acme.agent)
        .header("x-request-id", "req-from-the-client-42")
        .json(&json!({
            "query": "mutation($id: ID!) { reserveProperty(propertyId: $id) { id } }",
            "variables": { "id": plot.to_string() },
        }))
        .send()
        .await
        .expect("POST");
    assert_eq!(
        resp.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("req-from-the-client-42"),
        "the client's id comes back"
    );
    let body: Value = resp.json().await.expect("JSON");
    let reservation = body["data"]["reserveProperty"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let line = find_line(&binary, |v, _| v["message"] == "reserved").await;
    let text = line.to_string();
    assert!(
        text.contains("req-from-the-client-42"),
        "request id in {text}"
    );
    assert!(
        text.contains(&acme.workspace.to_string()),
        "workspace id in {text}"
    );
    assert!(text.contains(&plot.to_string()), "property id in {text}");
    assert!(text.contains(&reservation), "reservation id in {text}");
    // The ids sit in named fields, not only somewhere in the text.
    assert_eq!(line["property.id"], plot.to_string());
    let spans = line["spans"].as_array().expect("the span list");
    assert!(
        spans
            .iter()
            .any(|s| s["request.id"] == "req-from-the-client-42")
    );
    assert!(
        spans
            .iter()
            .any(|s| s["workspace.id"] == acme.workspace.to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_an_id_gets_a_new_one_that_its_log_lines_carry() {
    let world = World::new().await;
    let acme = world.workspace("Acme", 1).await;
    let binary = BinaryServer::start(&world, &[]).await;
    let server = binary.server();

    let health = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("GET");
    let id = health
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let id = id.expect("every response has a request id");
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "a UUID: {id}");

    let resp = server
        .client
        .post(server.url("/graphql"))
        .bearer_auth(&acme.agent)
        .json(&json!({
            "query": "mutation($id: ID!) { reserveProperty(propertyId: $id) { id } }",
            "variables": { "id": acme.plot(0, 0).to_string() },
        }))
        .send()
        .await
        .expect("POST");
    let id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("id")
        .to_owned();
    assert_ne!(
        Some(id.as_str()),
        health
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
    );
    let line = find_line(&binary, |v, _| v["message"] == "reserved").await;
    assert!(line.to_string().contains(&id), "{line}");
}
