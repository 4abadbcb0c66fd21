//! Who may call: tokens, deactivated users, suspended workspaces.

use holdfast_domain::directory;
use holdfast_domain::entities::WorkspaceStatus;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::helpers::{TestApp, assert_error, spawn_app};
use holdfast_domain::entities::Role;

const ME: &str = "{ me { id name role } }";

#[tokio::test]
async fn a_request_without_a_token_is_unauthenticated() {
    let app = spawn_app().await;
    let body = app.gql(None, ME, json!({})).await;
    assert_error(&body, "UNAUTHENTICATED", 401);
}

#[tokio::test]
async fn a_valid_token_names_its_user() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let data = app.ok(&ws.admin.token, ME, json!({})).await;
    assert_eq!(data["me"]["id"], json!(ws.admin.id));
    assert_eq!(data["me"]["role"], json!("ADMIN"));
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_unauthenticated() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let claims = json!({
        "sub": ws.admin.id, "ws": ws.id.to_string(),
        "iat": jsonwebtoken::get_current_timestamp(),
        "exp": jsonwebtoken::get_current_timestamp() + 3600,
    });
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(b"not-the-server-secret-not-the-server-secret"),
    )
    .expect("encode");
    let body = app.gql(Some(&forged), ME, json!({})).await;
    assert_error(&body, "UNAUTHENTICATED", 401);
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_unauthenticated() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        json!({
            "sub": ws.admin.id, "ws": ws.id.to_string(),
            "exp": jsonwebtoken::get_current_timestamp() + 3600,
        })
        .to_string(),
    );
    for token in [format!("{header}.{claims}."), format!("{header}.{claims}")] {
        let body = app.gql(Some(&token), ME, json!({})).await;
        assert_error(&body, "UNAUTHENTICATED", 401);
    }
}

#[tokio::test]
async fn an_expired_token_is_unauthenticated() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({ "sub": ws.admin.id, "ws": ws.id.to_string(), "iat": now - 7200, "exp": now - 3600 });
    let expired = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(crate::helpers::TEST_SECRET.as_bytes()),
    )
    .expect("encode");
    let body = app.gql(Some(&expired), ME, json!({})).await;
    assert_error(&body, "UNAUTHENTICATED", 401);
}

#[tokio::test]
async fn a_malformed_authorization_header_is_unauthenticated() {
    let app = spawn_app().await;
    for token in ["garbage", "a.b.c"] {
        let body = app.gql(Some(token), ME, json!({})).await;
        assert_error(&body, "UNAUTHENTICATED", 401);
    }
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("Authorization", "Basic dXNlcjpwYXNz")
        .json(&json!({ "query": ME }))
        .send()
        .await
        .expect("send");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_error(&body, "UNAUTHENTICATED", 401);
}

#[tokio::test]
async fn a_deactivated_user_is_unauthenticated() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    deactivate(&app, &ws.admin.id).await;
    let body = app.gql(Some(&ws.admin.token), ME, json!({})).await;
    assert_error(&body, "UNAUTHENTICATED", 401);
}

#[tokio::test]
async fn a_suspended_workspace_is_forbidden() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    directory::set_workspace_status(&app.db, ws.id, WorkspaceStatus::Suspended)
        .await
        .expect("suspend");
    let body = app.gql(Some(&ws.admin.token), ME, json!({})).await;
    assert_error(&body, "FORBIDDEN", 403);
}

/// `reserveProperty` checks its caller inside its own transaction rather
/// than with a lookup at the door: the refusals are the same as everywhere,
/// the plot stays available, and nothing is counted as a reservation attempt.
#[tokio::test]
async fn reserve_refuses_a_deactivated_user_and_a_suspended_workspace() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let alice = app.member(&ws, Role::SalesAgent, "Alice").await;
    let bob = app.member(&ws, Role::SalesAgent, "Bob").await;
    let (_, plots) = app.project(&ws.admin.token, "Riverside", &["A-1"]).await;

    deactivate(&app, &alice.id).await;
    let body = app.reserve(&alice.token, &plots[0]).await;
    assert_error(&body, "UNAUTHENTICATED", 401);
    assert_eq!(
        body["errors"][0]["message"],
        json!("this user has been deactivated")
    );

    directory::set_workspace_status(&app.db, ws.id, WorkspaceStatus::Suspended)
        .await
        .expect("suspend");
    let body = app.reserve(&bob.token, &plots[0]).await;
    assert_error(&body, "FORBIDDEN", 403);

    directory::set_workspace_status(&app.db, ws.id, WorkspaceStatus::Active)
        .await
        .expect("resume");
    let body = app.reserve(&bob.token, &plots[0]).await;
    assert_eq!(
        body["data"]["reserveProperty"]["status"],
        json!("ACTIVE"),
        "{body}"
    );
}

/// Deactivates a user directly in the database (no API does it yet).
async fn deactivate(app: &TestApp, user_id: &str) {
    app.db
        .execute_unprepared(&format!(
            "UPDATE app_user SET active = false WHERE id = '{user_id}'"
        ))
        .await
        .expect("deactivate");
}
