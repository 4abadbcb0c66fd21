//! The subscription handshake: the token goes in `connection_init`, and a
//! connection without a good one is refused with a close code.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Client, Protocol, Seen, World};

#[tokio::test]
async fn a_connection_init_without_a_token_is_refused_with_4401() {
    let world = World::new().await;
    let server = world.server().await;
    let mut client = Client::open(&server, Protocol::TransportWs).await;
    match client.init(json!({})).await {
        Seen::Closed(code, reason) => {
            assert_eq!(code, 4401, "{reason}");
            assert!(reason.contains("bearer token"), "{reason}");
        }
        other => panic!("expected the connection to close, got {other:?}"),
    }
}

#[tokio::test]
async fn a_forged_token_is_refused_in_both_protocols() {
    let world = World::new().await;
    let acme = world.workspace("Acme", 1).await;
    let server = world.server().await;
    let forged = holdfast_server::auth::Tokens::new(b"another-secret-that-is-32-bytes-long!!")
        .mint(
            acme.admin_actor.user_id,
            acme.workspace,
            Duration::from_secs(60),
        )
        .expect("mint");
    let payload = json!({ "Authorization": format!("Bearer {forged}") });

    let mut modern = Client::open(&server, Protocol::TransportWs).await;
    assert!(
        matches!(modern.init(payload.clone()).await, Seen::Closed(4401, _)),
        "graphql-transport-ws closes with 4401"
    );

    // The older protocol says why in a connection_error, then closes.
    let mut legacy = Client::open(&server, Protocol::LegacyWs).await;
    match legacy.init(payload).await {
        Seen::Errors(payload) => {
            assert!(
                payload["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("signature")),
                "{payload}"
            );
        }
        other => panic!("expected a connection_error, got {other:?}"),
    }
    assert!(matches!(
        legacy.next(Duration::from_secs(2)).await,
        Some(Seen::Closed(4401, _))
    ));
}

#[tokio::test]
async fn a_suspended_workspace_is_refused_with_4403() {
    let world = World::new().await;
    let acme = world.workspace("Acme", 1).await;
    holdfast_domain::directory::set_workspace_status(
        &world.db,
        acme.workspace,
        holdfast_domain::entities::WorkspaceStatus::Suspended,
    )
    .await
    .expect("suspend");
    let server = world.server().await;
    let mut client = Client::open(&server, Protocol::TransportWs).await;
    let init = client
        .init(json!({ "Authorization": format!("Bearer {}", acme.agent) }))
        .await;
    assert!(matches!(init, Seen::Closed(4403, _)), "{init:?}");
}

#[tokio::test]
async fn a_websocket_without_a_graphql_protocol_is_refused() {
    let world = World::new().await;
    let server = world.server().await;
    let resp = server
        .client
        .get(server.url("/graphql/ws"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn a_connection_that_never_sends_connection_init_is_closed_with_4408() {
    let world = World::new().await;
    let server = world.server().await;
    let mut client = Client::open(&server, Protocol::TransportWs).await;
    match client.next(Duration::from_secs(12)).await {
        Some(Seen::Closed(code, reason)) => assert_eq!(code, 4408, "{reason}"),
        other => panic!("expected a close with 4408, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_init_that_cannot_be_checked_closes_with_4500_and_works_once_the_database_is_back()
 {
    let world = World::new().await;
    let acme = world.workspace("Acme", 1).await;
    let postgres = crate::helpers::TcpProxy::postgres().await;
    // The test database's URL, through the proxy.
    let pg_server = holdfast_testkit::server_url();
    let pg_host = pg_server.rsplit('@').next().unwrap_or(&pg_server);
    let database_url = world
        .test_db
        .url
        .replacen(pg_host, &postgres.addr.to_string(), 1);
    let server = world
        .server_with(|c| {
            c.deployment.database_url = database_url;
            c.db_timeout = Duration::from_secs(1).into();
        })
        .await;
    let payload = json!({ "Authorization": format!("Bearer {}", acme.agent) });

    postgres.cut();
    let mut client = Client::open(&server, Protocol::TransportWs).await;
    match client.init(payload.clone()).await {
        Seen::Closed(code, reason) => assert_eq!(code, 4500, "{reason}"),
        other => panic!("expected a close with 4500, got {other:?}"),
    }

    postgres.restore();
    let mut client = Client::open(&server, Protocol::TransportWs).await;
    assert_eq!(client.init(payload).await, Seen::Complete, "accepted again");
}
