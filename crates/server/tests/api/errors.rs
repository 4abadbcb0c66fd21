//! Every error code clients can see (docs/API.md), each produced by a real
//! request.

use std::time::Duration;

use holdfast_domain::entities::Role;
use sea_orm::{ConnectionTrait, Database, TransactionTrait};
use serde_json::json;

use crate::helpers::{assert_error, spawn_app, spawn_app_with};

#[tokio::test]
async fn another_workspaces_ids_are_not_found() {
    let app = spawn_app().await;
    let ours = app.bootstrap("Ours").await;
    let theirs = app.bootstrap("Theirs").await;
    let their_agent = app.member(&theirs, Role::SalesAgent, "Trudy").await;
    let (their_project, their_plots) = app
        .project(&theirs.admin.token, "Theirs", &["T-1", "T-2"])
        .await;
    let reserved = app.reserve(&their_agent.token, &their_plots[0]).await;
    let their_reservation = reserved["data"]["reserveProperty"]["id"]
        .as_str()
        .expect("id");

    // Writes: NOT_FOUND, never FORBIDDEN.
    let body = app.reserve(&ours.admin.token, &their_plots[1]).await;
    assert_error(&body, "NOT_FOUND", 404);
    for mutation in [
        "releaseReservation",
        "extendReservation",
        "convertReservation",
    ] {
        let body = app
            .gql(
                Some(&ours.admin.token),
                &format!("mutation($r: ID!) {{ {mutation}(reservationId: $r) {{ id }} }}"),
                json!({ "r": their_reservation }),
            )
            .await;
        assert_error(&body, "NOT_FOUND", 404);
    }
    let body = app
        .gql(
            Some(&ours.admin.token),
            "mutation($p: ID!) { addProperties(projectId: $p, codes: [\"X-1\"]) { id } }",
            json!({ "p": their_project }),
        )
        .await;
    assert_error(&body, "NOT_FOUND", 404);

    // Reads: nothing there.
    let data = app
        .ok(
            &ours.admin.token,
            "query($p: ID!, $r: ID!, $j: ID!) { property(id: $p) { id } reservation(id: $r) { id } project(id: $j) { id } \
             properties(projectId: $j) { nodes { id } } reservations(propertyId: $p) { nodes { id } } }",
            json!({ "p": their_plots[0], "r": their_reservation, "j": their_project }),
        )
        .await;
    assert_eq!(data["property"], json!(null));
    assert_eq!(data["reservation"], json!(null));
    assert_eq!(data["project"], json!(null));
    assert_eq!(data["properties"]["nodes"], json!([]));
    assert_eq!(data["reservations"]["nodes"], json!([]));
}

#[tokio::test]
async fn a_malformed_id_is_bad_user_input() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let body = app.reserve(&ws.admin.token, "not-a-uuid").await;
    assert_error(&body, "BAD_USER_INPUT", 400);
    let body = app
        .gql(
            Some(&ws.admin.token),
            "{ property(id: \"42\") { id } }",
            json!({}),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", 400);
}

#[tokio::test]
async fn duplicate_codes_are_bad_user_input_and_add_nothing() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let (project, _) = app.project(&ws.admin.token, "Riverside", &["A-1"]).await;
    let add = "mutation($p: ID!, $codes: [String!]!) { addProperties(projectId: $p, codes: $codes) { id } }";

    let body = app
        .gql(
            Some(&ws.admin.token),
            add,
            json!({ "p": project, "codes": ["B-1", "B-2", "B-1"] }),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", 400);
    let body = app
        .gql(
            Some(&ws.admin.token),
            add,
            json!({ "p": project, "codes": ["B-3", "A-1"] }),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", 400);

    let data = app
        .ok(
            &ws.admin.token,
            "query($p: ID!) { project(id: $p) { totalPlots properties { nodes { code } } } }",
            json!({ "p": project }),
        )
        .await;
    assert_eq!(data["project"]["totalPlots"], json!(1));
    assert_eq!(
        data["project"]["properties"]["nodes"],
        json!([{ "code": "A-1" }])
    );
}

#[tokio::test]
async fn a_page_of_more_than_100_is_bad_user_input() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    for query in [
        "{ properties(first: 101) { nodes { id } } }",
        "{ reservations(first: 1000) { nodes { id } } }",
        "{ projects(first: -1) { nodes { id } } }",
    ] {
        let body = app.gql(Some(&ws.admin.token), query, json!({})).await;
        assert_error(&body, "BAD_USER_INPUT", 400);
    }
    let data = app
        .ok(
            &ws.admin.token,
            "{ properties(first: 100) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["properties"]["nodes"], json!([]));
}

#[tokio::test]
async fn a_reserved_plot_is_property_unavailable_with_its_status_and_time() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let alice = app.member(&ws, Role::SalesAgent, "Alice").await;
    let bob = app.member(&ws, Role::SalesAgent, "Bob").await;
    let (_, plots) = app.project(&ws.admin.token, "Riverside", &["A-1"]).await;
    let first = app.reserve(&alice.token, &plots[0]).await;
    let expires_at = first["data"]["reserveProperty"]["expiresAt"]
        .as_str()
        .expect("expiresAt");

    let body = app.reserve(&bob.token, &plots[0]).await;
    assert_error(&body, "PROPERTY_UNAVAILABLE", 409);
    let ext = &body["errors"][0]["extensions"];
    assert_eq!(ext["propertyStatus"], json!("RESERVED"));
    let until =
        chrono::DateTime::parse_from_rfc3339(ext["reservedUntil"].as_str().expect("reservedUntil"))
            .expect("RFC 3339");
    let expires = chrono::DateTime::parse_from_rfc3339(expires_at).expect("RFC 3339");
    assert_eq!(until, expires);
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(message.contains("RESERVED until"), "{message}");
}

#[tokio::test]
async fn an_ended_reservation_is_reservation_not_active() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let alice = app.member(&ws, Role::SalesAgent, "Alice").await;
    let (_, plots) = app.project(&ws.admin.token, "Riverside", &["A-1"]).await;
    let reserved = app.reserve(&alice.token, &plots[0]).await;
    let id = reserved["data"]["reserveProperty"]["id"]
        .as_str()
        .expect("id");
    let release = "mutation($r: ID!) { releaseReservation(reservationId: $r) { status } }";
    app.ok(&alice.token, release, json!({ "r": id })).await;
    let body = app
        .gql(Some(&alice.token), release, json!({ "r": id }))
        .await;
    assert_error(&body, "RESERVATION_NOT_ACTIVE", 409);
    let body = app
        .gql(
            Some(&alice.token),
            "mutation($r: ID!) { convertReservation(reservationId: $r) { status } }",
            json!({ "r": id }),
        )
        .await;
    assert_error(&body, "RESERVATION_NOT_ACTIVE", 409);
}

#[tokio::test]
async fn an_agent_at_the_limit_gets_reservation_limit_reached() {
    let app = spawn_app_with(|c| c.rules.max_active_per_agent = 2).await;
    let ws = app.bootstrap("Acme").await;
    let alice = app.member(&ws, Role::SalesAgent, "Alice").await;
    let (_, plots) = app
        .project(&ws.admin.token, "Riverside", &["A-1", "A-2", "A-3"])
        .await;
    for plot in &plots[..2] {
        let body = app.reserve(&alice.token, plot).await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    let body = app.reserve(&alice.token, &plots[2]).await;
    assert_error(&body, "RESERVATION_LIMIT_REACHED", 409);
}

#[tokio::test]
async fn a_plot_locked_by_another_transaction_answers_busy() {
    let app = spawn_app_with(|c| c.lock_timeout = Duration::from_millis(200).into()).await;
    let ws = app.bootstrap("Acme").await;
    let alice = app.member(&ws, Role::SalesAgent, "Alice").await;
    let (_, plots) = app.project(&ws.admin.token, "Riverside", &["A-1"]).await;

    let other = Database::connect(&app.test_db.url).await.expect("connect");
    let txn = other.begin().await.expect("begin");
    txn.execute_unprepared(&format!(
        "SELECT id FROM property WHERE id = '{}' FOR UPDATE",
        plots[0]
    ))
    .await
    .expect("lock the plot");
    let body = app.reserve(&alice.token, &plots[0]).await;
    assert_error(&body, "BUSY", 503);
    txn.rollback().await.expect("rollback");

    // Once the lock is gone the same request goes through.
    let body = app.reserve(&alice.token, &plots[0]).await;
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn an_unreachable_database_is_service_unavailable() {
    let app = spawn_app_with(|c| {
        c.deployment.database_url = "postgres://postgres@127.0.0.1:1/holdfast".into();
        c.db_timeout = Duration::from_secs(1).into();
    })
    .await;
    let token = app.token_for(
        holdfast_domain::UserId::new(),
        holdfast_domain::WorkspaceId::new(),
    );
    let body = app.gql(Some(&token), "{ me { id } }", json!({})).await;
    assert_error(&body, "SERVICE_UNAVAILABLE", 503);
}

#[tokio::test]
async fn a_reservation_stands_when_redis_is_down() {
    let app = spawn_app_with(|c| c.deployment.redis_url = "redis://127.0.0.1:1".into()).await;
    let ws = app.bootstrap("Acme").await;
    let alice = app.member(&ws, Role::SalesAgent, "Alice").await;
    let (_, plots) = app.project(&ws.admin.token, "Riverside", &["A-1"]).await;
    let body = app.reserve(&alice.token, &plots[0]).await;
    assert_eq!(
        body["data"]["reserveProperty"]["status"],
        json!("ACTIVE"),
        "{body}"
    );
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("holdfast_release_jobs_enqueue_failures_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_database_failure_is_internal_and_tells_the_client_nothing() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let (_, plots) = app.project(&ws.admin.token, "Riverside", &["A-1"]).await;
    // A schema the server does not expect: a real failure inside PostgreSQL
    // that is neither a lock timeout nor a lost connection.
    app.db
        .execute_unprepared("ALTER TABLE reservation RENAME TO reservation_moved")
        .await
        .expect("rename");
    let body = app.reserve(&ws.admin.token, &plots[0]).await;
    assert_error(&body, "INTERNAL", 500);
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert_eq!(message, "internal error", "no detail: {body}");
    assert!(
        !body.to_string().contains("reservation_moved") && !body.to_string().contains("relation")
    );
}

#[tokio::test]
async fn a_name_too_long_too_many_codes_or_a_taken_email_are_bad_user_input() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let body = app
        .gql(
            Some(&ws.admin.token),
            "mutation($n: String!) { createProject(name: $n) { id } }",
            json!({ "n": "x".repeat(201) }),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", 400);

    let (project, _) = app.project(&ws.admin.token, "Riverside", &["A-1"]).await;
    let codes: Vec<String> = (0..1001).map(|i| format!("C-{i}")).collect();
    let body = app
        .gql(
            Some(&ws.admin.token),
            "mutation($p: ID!, $codes: [String!]!) { addProperties(projectId: $p, codes: $codes) { id } }",
            json!({ "p": project, "codes": codes }),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", 400);

    let create = "mutation($e: String!) { createUser(name: \"Alice\", email: $e, role: SALES_AGENT) { token } }";
    app.ok(&ws.admin.token, create, json!({ "e": "alice@example.com" }))
        .await;
    let body = app
        .gql(
            Some(&ws.admin.token),
            create,
            json!({ "e": "alice@example.com" }),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", 400);
    let body = app
        .gql(
            Some(&ws.admin.token),
            create,
            json!({ "e": "not-an-email" }),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", 400);
}
