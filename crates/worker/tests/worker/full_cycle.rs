//! The whole story end to end: a hold taken over GraphQL on the real server
//! is released by the worker's delayed job, and GraphQL shows the plot
//! AVAILABLE again with the reservation's endedAt set.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use holdfast_runtime::{Deployment, Rules};
use holdfast_server::auth::Tokens;
use holdfast_server::{Application, Config as ServerConfig};
use holdfast_testkit::{Running, TEST_SECRET};
use serde_json::{Value, json};

use crate::helpers::World;

async fn gql(addr: SocketAddr, token: &str, query: &str, variables: Value) -> Value {
    let body: Value = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert!(body.get("errors").is_none(), "unexpected errors: {body}");
    body["data"].clone()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().expect("a time").parse().expect("RFC 3339")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_taken_over_graphql_is_released_by_the_worker_and_graphql_shows_it() {
    let w = World::new().await;
    let server = Application::build(&ServerConfig {
        deployment: Deployment {
            database_url: w.db_url.clone(),
            redis_url: holdfast_testkit::redis_url(),
            queue: w.queue_keys.name.clone(),
            ..Deployment::default()
        },
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        jwt_secret: Some(TEST_SECRET.into()),
        rules: Rules {
            reservation_ttl: Duration::from_secs(2).into(),
            ..Rules::default()
        },
        db_max_connections: 5,
        ..ServerConfig::default()
    })
    .await
    .expect("server");
    let addr = server.addr();
    let server = Running::spawn(|stop| server.run_until(stop));
    let worker = w.spawn_worker("off").await;
    let plot = w.plots(1).await.remove(0);
    let agent = w.agent().await;
    let tokens = Tokens::new(TEST_SECRET.as_bytes());
    let agent_token = tokens
        .mint(agent.user_id, agent.workspace_id, Duration::from_secs(600))
        .expect("token");

    let data = gql(
        addr,
        &agent_token,
        "mutation($id: ID!) { reserveProperty(propertyId: $id) { id status expiresAt } }",
        json!({ "id": plot.to_string() }),
    )
    .await;
    let reservation = data["reserveProperty"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let expires_at = time(&data["reserveProperty"]["expiresAt"]);
    assert_eq!(data["reserveProperty"]["status"], "ACTIVE");

    let query = "query($r: ID!, $p: ID!, $project: ID!) { \
                   reservation(id: $r) { status expiresAt endedAt } \
                   property(id: $p) { status reservedBy { id } reservedUntil } \
                   project(id: $project) { totalPlots availablePlots reservedPlots } }";
    let vars = json!({ "r": reservation, "p": plot.to_string(), "project": w.project.to_string() });
    let held = gql(addr, &agent_token, query, vars.clone()).await;
    assert_eq!(held["property"]["status"], "RESERVED");
    assert_eq!(held["project"]["availablePlots"], 0);

    let deadline = Instant::now() + Duration::from_secs(10);
    let released = loop {
        let data = gql(addr, &agent_token, query, vars.clone()).await;
        if !data["reservation"]["endedAt"].is_null() {
            break data;
        }
        assert!(Instant::now() < deadline, "endedAt still null: {data}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    assert_eq!(released["reservation"]["status"], "EXPIRED");
    assert_eq!(released["property"]["status"], "AVAILABLE");
    assert!(released["property"]["reservedBy"].is_null(), "{released}");
    assert!(
        released["property"]["reservedUntil"].is_null(),
        "{released}"
    );
    assert_eq!(released["project"]["availablePlots"], 1);
    let ended_at = time(&released["reservation"]["endedAt"]);
    let lag = (ended_at - expires_at).num_milliseconds() as f64 / 1000.0;
    println!("release lag (s) of a hold taken over GraphQL: {lag}");
    // Never early; promptly, but the 2 s target (p99) is `just bench`'s to
    // measure, not a timed test's on a shared machine (CI once saw 2.4 s).
    assert!(
        (0.0..5.0).contains(&lag),
        "endedAt trails expiresAt by the lag: {lag}"
    );

    worker.stop().await;
    server.stop(Duration::from_secs(10)).await;
    w.audit_clean().await;
}
