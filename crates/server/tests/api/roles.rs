//! What each role may do: agents reserve, release and convert their own;
//! managers also act on anyone's, extend, create projects and add plots;
//! admins also create users.

use holdfast_domain::entities::Role;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn an_agent_may_not_create_projects_add_properties_or_extend() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let agent = app.member(&ws, Role::SalesAgent, "Alice").await;
    let (project, plots) = app.project(&ws.admin.token, "Riverside", &["A-1"]).await;

    let body = app
        .gql(
            Some(&agent.token),
            "mutation { createProject(name: \"Mine\") { id } }",
            json!({}),
        )
        .await;
    assert_error(&body, "FORBIDDEN", 403);

    let body = app
        .gql(
            Some(&agent.token),
            "mutation($p: ID!) { addProperties(projectId: $p, codes: [\"Z-1\"]) { id } }",
            json!({ "p": project }),
        )
        .await;
    assert_error(&body, "FORBIDDEN", 403);

    let reserved = app.reserve(&agent.token, &plots[0]).await;
    let reservation = reserved["data"]["reserveProperty"]["id"]
        .as_str()
        .expect("id");
    let body = app
        .gql(
            Some(&agent.token),
            "mutation($r: ID!) { extendReservation(reservationId: $r) { id } }",
            json!({ "r": reservation }),
        )
        .await;
    assert_error(&body, "FORBIDDEN", 403);

    let body = app
        .gql(Some(&agent.token), "{ users { id } }", json!({}))
        .await;
    assert_error(&body, "FORBIDDEN", 403);
}

#[tokio::test]
async fn a_manager_may_not_create_users() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let manager = app.member(&ws, Role::Manager, "Max").await;
    let body = app
        .gql(
            Some(&manager.token),
            "mutation { createUser(name: \"Eve\", email: \"eve@example.com\", role: ADMIN) { token } }",
            json!({}),
        )
        .await;
    assert_error(&body, "FORBIDDEN", 403);
    // ...but may list them.
    let data = app
        .ok(&manager.token, "{ users { name role } }", json!({}))
        .await;
    assert_eq!(data["users"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn an_agent_may_not_release_another_agents_reservation_but_a_manager_may() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let alice = app.member(&ws, Role::SalesAgent, "Alice").await;
    let bob = app.member(&ws, Role::SalesAgent, "Bob").await;
    let manager = app.member(&ws, Role::Manager, "Max").await;
    let (_, plots) = app.project(&manager.token, "Riverside", &["A-1"]).await;
    let reserved = app.reserve(&alice.token, &plots[0]).await;
    let reservation = reserved["data"]["reserveProperty"]["id"]
        .as_str()
        .expect("id");
    let release =
        "mutation($r: ID!) { releaseReservation(reservationId: $r) { status endedBy { id } } }";

    let body = app
        .gql(Some(&bob.token), release, json!({ "r": reservation }))
        .await;
    assert_error(&body, "FORBIDDEN", 403);

    let data = app
        .ok(&manager.token, release, json!({ "r": reservation }))
        .await;
    assert_eq!(data["releaseReservation"]["status"], json!("RELEASED"));
    assert_eq!(
        data["releaseReservation"]["endedBy"]["id"],
        json!(manager.id)
    );
}
