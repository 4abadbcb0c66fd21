//! Running a team over GraphQL: `updateUser` and `updateProject` by role and
//! workspace, the last active admin kept (also when two admins demote each
//! other at once), a deactivated user refused from their next request on,
//! and archived projects left out of `projects()` and brought back.

use holdfast_domain::entities::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, error_of, spawn_app};

const UPDATE_USER: &str = "mutation($id: ID!, $name: String, $role: Role, $active: Boolean) { \
    updateUser(userId: $id, name: $name, role: $role, active: $active) { id name role active } }";

const UPDATE_PROJECT: &str = "mutation($id: ID!, $name: String, $currency: String, $archived: Boolean) { \
    updateProject(projectId: $id, name: $name, currency: $currency, archived: $archived) { id name currency archived } }";

const ME: &str = "{ me { id name role active } }";

async fn update_user(app: &TestApp, token: &str, variables: Value) -> Value {
    app.gql(Some(token), UPDATE_USER, variables).await
}

async fn update_project(app: &TestApp, token: &str, variables: Value) -> Value {
    app.gql(Some(token), UPDATE_PROJECT, variables).await
}

/// The names of the projects `projects(...)` lists, with `arguments`.
async fn project_names(app: &TestApp, token: &str, arguments: &str) -> Vec<String> {
    let data = app
        .ok(
            token,
            &format!("{{ projects{arguments} {{ nodes {{ name archived }} }} }}"),
            json!({}),
        )
        .await;
    data["projects"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect()
}

/// The workspace's active admins, as `users` shows them to its admin.
async fn active_admins(app: &TestApp, token: &str) -> usize {
    let data = app.ok(token, "{ users { role active } }", json!({})).await;
    data["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter(|u| u["role"] == json!("ADMIN") && u["active"] == json!(true))
        .count()
}

fn assert_last_admin_refusal(body: &Value) {
    assert_error(body, "BAD_USER_INPUT", 400);
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("last active admin"), "{message}");
}

#[tokio::test]
async fn an_admins_change_to_a_user_shows_from_their_next_request_and_deactivation_locks_them_out()
{
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let alice = app.member(&ws, Role::SalesAgent, "Alice").await;
    let (_, plots) = app.project(&ws.admin.token, "Riverside", &["A-1"]).await;
    let hold = app.reserve(&alice.token, &plots[0]).await;
    let hold = hold["data"]["reserveProperty"]["id"]
        .as_str()
        .expect("a hold")
        .to_owned();

    let data = app
        .ok(
            &ws.admin.token,
            UPDATE_USER,
            json!({ "id": alice.id, "name": "Alice Brown", "role": "MANAGER" }),
        )
        .await;
    assert_eq!(
        data["updateUser"],
        json!({ "id": alice.id, "name": "Alice Brown", "role": "MANAGER", "active": true })
    );
    let me = app.ok(&alice.token, ME, json!({})).await;
    assert_eq!(me["me"]["role"], json!("MANAGER"));
    assert_eq!(me["me"]["name"], json!("Alice Brown"));

    let data = app
        .ok(
            &ws.admin.token,
            UPDATE_USER,
            json!({ "id": alice.id, "active": false }),
        )
        .await;
    assert_eq!(data["updateUser"]["active"], json!(false));
    assert_eq!(
        data["updateUser"]["role"],
        json!("MANAGER"),
        "left as it was"
    );
    let body = app.gql(Some(&alice.token), ME, json!({})).await;
    assert_error(&body, "UNAUTHENTICATED", 401);
    assert_error(
        &app.reserve(&alice.token, &plots[0]).await,
        "UNAUTHENTICATED",
        401,
    );

    // Her hold stays until it ends, and the team sees she is inactive.
    let data = app
        .ok(
            &ws.admin.token,
            "query($id: ID!) { reservation(id: $id) { status agent { name active } } }",
            json!({ "id": hold }),
        )
        .await;
    assert_eq!(
        data["reservation"],
        json!({ "status": "ACTIVE", "agent": { "name": "Alice Brown", "active": false } })
    );

    app.ok(
        &ws.admin.token,
        UPDATE_USER,
        json!({ "id": alice.id, "active": true }),
    )
    .await;
    let me = app.ok(&alice.token, ME, json!({})).await;
    assert_eq!(me["me"]["active"], json!(true));
    app.assert_consistent().await;
}

#[tokio::test]
async fn only_admins_update_users_and_another_workspaces_user_is_not_found() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let manager = app.member(&ws, Role::Manager, "Max").await;
    let agent = app.member(&ws, Role::SalesAgent, "Alice").await;
    for token in [&manager.token, &agent.token] {
        let body = update_user(&app, token, json!({ "id": agent.id, "active": false })).await;
        assert_error(&body, "FORBIDDEN", 403);
    }
    let other = app.bootstrap("Other Homes").await;
    let body = update_user(
        &app,
        &ws.admin.token,
        json!({ "id": other.admin.id, "active": false }),
    )
    .await;
    assert_error(&body, "NOT_FOUND", 404);
    let me = app.ok(&other.admin.token, ME, json!({})).await;
    assert_eq!(me["me"]["active"], json!(true), "untouched");
}

#[tokio::test]
async fn update_user_checks_its_input_like_create_user() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let agent = app.member(&ws, Role::SalesAgent, "Alice").await;
    let too_long = "x".repeat(201);
    for name in ["", "  ", " Alice", "Ali\u{0}ce", too_long.as_str()] {
        let body = update_user(
            &app,
            &ws.admin.token,
            json!({ "id": agent.id, "name": name }),
        )
        .await;
        assert_error(&body, "BAD_USER_INPUT", 400);
    }
    let body = update_user(
        &app,
        &ws.admin.token,
        json!({ "id": "nope", "active": false }),
    )
    .await;
    assert_error(&body, "BAD_USER_INPUT", 400);
    let body = update_user(
        &app,
        &ws.admin.token,
        json!({ "id": agent.id, "role": "OWNER" }),
    )
    .await;
    assert_error(&body, "BAD_USER_INPUT", 400);
    let me = app.ok(&agent.token, ME, json!({})).await;
    assert_eq!(me["me"]["name"], json!("Alice"));
}

#[tokio::test]
async fn the_last_active_admin_can_be_neither_demoted_nor_deactivated() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let admin = &ws.admin;
    for change in [
        json!({ "id": admin.id, "role": "MANAGER" }),
        json!({ "id": admin.id, "role": "SALES_AGENT" }),
        json!({ "id": admin.id, "active": false }),
    ] {
        assert_last_admin_refusal(&update_user(&app, &admin.token, change).await);
    }

    // With a second admin, the first may step down; the second is then the
    // last one, and is kept.
    let max = app.member(&ws, Role::Admin, "Max").await;
    let data = app
        .ok(
            &max.token,
            UPDATE_USER,
            json!({ "id": admin.id, "role": "MANAGER" }),
        )
        .await;
    assert_eq!(data["updateUser"]["role"], json!("MANAGER"));
    assert_last_admin_refusal(
        &update_user(&app, &max.token, json!({ "id": max.id, "active": false })).await,
    );
    assert_eq!(active_admins(&app, &max.token).await, 1);
}

/// Two admins demote each other with requests sent at the same instant,
/// round after round: never both, so the workspace keeps one admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    let app = spawn_app().await;
    for round in 0..10 {
        let ws = app.bootstrap(&format!("Acme {round}")).await;
        let max = app.member(&ws, Role::Admin, &format!("Max{round}")).await;
        let demote = |token: String, whom: String| {
            let app = &app;
            async move { update_user(app, &token, json!({ "id": whom, "role": "SALES_AGENT" })).await }
        };
        let (a, b) = tokio::join!(
            demote(ws.admin.token.clone(), max.id.clone()),
            demote(max.token.clone(), ws.admin.id.clone()),
        );
        let succeeded = [&a, &b]
            .iter()
            .filter(|body| body.get("errors").is_none())
            .count();
        assert_eq!(succeeded, 1, "round {round}: {a} {b}");
        let loser = if a.get("errors").is_some() { &a } else { &b };
        let (code, _) = error_of(loser);
        assert!(
            code == "FORBIDDEN" || code == "BAD_USER_INPUT",
            "round {round}: {loser}"
        );
        let winner = if a.get("errors").is_none() {
            &ws.admin.token
        } else {
            &max.token
        };
        assert_eq!(active_admins(&app, winner).await, 1, "round {round}");
    }
    app.assert_consistent().await;
}

#[tokio::test]
async fn managers_and_admins_update_a_projects_name_currency_and_archived_flag() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let manager = app.member(&ws, Role::Manager, "Max").await;
    let (project, _) = app.project(&manager.token, "Riverside", &["A-1"]).await;

    let data = app
        .ok(
            &manager.token,
            UPDATE_PROJECT,
            json!({ "id": project, "name": "Riverside Phase 2", "currency": "INR" }),
        )
        .await;
    assert_eq!(
        data["updateProject"],
        json!({ "id": project, "name": "Riverside Phase 2", "currency": "INR", "archived": false })
    );
    // A currency left out of the call stays; null removes it.
    let data = app
        .ok(
            &ws.admin.token,
            "mutation($id: ID!) { updateProject(projectId: $id, archived: true) { currency archived } }",
            json!({ "id": project }),
        )
        .await;
    assert_eq!(data["updateProject"]["currency"], json!("INR"));
    assert_eq!(data["updateProject"]["archived"], json!(true));
    let data = app
        .ok(
            &manager.token,
            UPDATE_PROJECT,
            json!({ "id": project, "currency": null }),
        )
        .await;
    assert_eq!(data["updateProject"]["currency"], json!(null));
    assert_eq!(data["updateProject"]["name"], json!("Riverside Phase 2"));

    for currency in ["inr", "EURO", "E1", "", "₹", "US$"] {
        let body = update_project(
            &app,
            &manager.token,
            json!({ "id": project, "currency": currency }),
        )
        .await;
        assert_error(&body, "BAD_USER_INPUT", 400);
    }
    for name in ["", " Riverside", "x\ty"] {
        let body =
            update_project(&app, &manager.token, json!({ "id": project, "name": name })).await;
        assert_error(&body, "BAD_USER_INPUT", 400);
    }
    let body = update_project(
        &app,
        &manager.token,
        json!({ "id": "42", "archived": true }),
    )
    .await;
    assert_error(&body, "BAD_USER_INPUT", 400);
}

#[tokio::test]
async fn agents_may_not_update_projects_and_another_workspaces_project_is_not_found() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let agent = app.member(&ws, Role::SalesAgent, "Alice").await;
    let (project, _) = app.project(&ws.admin.token, "Riverside", &["A-1"]).await;
    let body = update_project(
        &app,
        &agent.token,
        json!({ "id": project, "archived": true }),
    )
    .await;
    assert_error(&body, "FORBIDDEN", 403);

    let other = app.bootstrap("Other Homes").await;
    let (theirs, _) = app.project(&other.admin.token, "Hillside", &["H-1"]).await;
    let body = update_project(
        &app,
        &ws.admin.token,
        json!({ "id": theirs, "archived": true }),
    )
    .await;
    assert_error(&body, "NOT_FOUND", 404);
    assert_eq!(
        project_names(&app, &other.admin.token, "").await,
        ["Hillside"]
    );
    assert_eq!(
        project_names(&app, &agent.token, "").await,
        ["Riverside"],
        "not archived by the agent"
    );
}

#[tokio::test]
async fn archived_projects_leave_projects_and_come_back_with_include_archived() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let agent = app.member(&ws, Role::SalesAgent, "Alice").await;
    let token = &ws.admin.token;
    let mut ids = Vec::new();
    for name in ["North", "Middle", "South"] {
        ids.push(app.project(token, name, &["A-1"]).await.0);
    }
    app.ok(
        token,
        UPDATE_PROJECT,
        json!({ "id": ids[1], "archived": true }),
    )
    .await;

    for who in [token, &agent.token] {
        assert_eq!(project_names(&app, who, "").await, ["North", "South"]);
        assert_eq!(
            project_names(&app, who, "(includeArchived: false)").await,
            ["North", "South"]
        );
        assert_eq!(
            project_names(&app, who, "(includeArchived: true)").await,
            ["North", "Middle", "South"]
        );
    }
    // Pages skip it too: the second page of one starts after North.
    let data = app
        .ok(
            token,
            "{ projects(first: 1) { pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    let cursor = data["projects"]["pageInfo"]["endCursor"].clone();
    let data = app
        .ok(
            token,
            "query($after: String) { projects(first: 1, after: $after) { nodes { name } pageInfo { hasNextPage } } }",
            json!({ "after": cursor }),
        )
        .await;
    assert_eq!(
        data["projects"],
        json!({ "nodes": [{ "name": "South" }], "pageInfo": { "hasNextPage": false } })
    );
    // project(id) still finds it, and says so.
    let data = app
        .ok(
            &agent.token,
            "query($id: ID!) { project(id: $id) { name archived totalPlots } }",
            json!({ "id": ids[1] }),
        )
        .await;
    assert_eq!(
        data["project"],
        json!({ "name": "Middle", "archived": true, "totalPlots": 1 })
    );

    app.ok(
        token,
        UPDATE_PROJECT,
        json!({ "id": ids[1], "archived": false }),
    )
    .await;
    assert_eq!(
        project_names(&app, token, "").await,
        ["North", "Middle", "South"]
    );
}
