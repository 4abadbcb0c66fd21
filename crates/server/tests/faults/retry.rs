//! A reserve whose commit reached PostgreSQL but whose answer was lost on
//! the way back (a free plot's reserve is one statement in autocommit, its
//! own commit): the client was told SERVICE_UNAVAILABLE and cannot know
//! whether it holds the plot. Its retry with the same idempotency key
//! answers the reservation that committed, and makes no second one.

use std::time::{Duration, Instant};

use holdfast_testkit::TestDb;
use serde_json::{Value, json};

use crate::helpers::{
    QueueKeys, Scene, Server, Target, TcpProxy, assert_audit_clean, code_of, count, sample,
};

const RESERVE: &str = "mutation($p: ID!, $k: String) { \
     reserveProperty(propertyId: $p, idempotencyKey: $k) { id status } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_key_after_a_lost_commit_answers_the_reservation_that_committed() {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    let scene = Scene::new(&conn, 1, 1).await;
    let keys = QueueKeys::new();
    let link = TcpProxy::postgres().await;
    // Without TLS, so that the proxy sees the reserve go by: its key travels
    // in the message that binds the statement's values, sent with the one
    // that runs it. One connection, as in the smallest deployment.
    let through_link = link.postgres_url(&db.url);
    let separator = if through_link.contains('?') { '&' } else { '?' };
    let through_link = format!("{through_link}{separator}sslmode=disable");
    let server = Server::start(
        &Target {
            database_url: through_link,
            redis_url: keys.redis_url.clone(),
            queue: keys.name.clone(),
        },
        &[
            ("HOLDFAST_REQUEST_TIMEOUT", "3s"),
            ("HOLDFAST_DB_TIMEOUT", "2s"),
            ("HOLDFAST_DB_MAX_CONNECTIONS", "1"),
        ],
    )
    .await;
    let (_, token) = &scene.agents[0];
    let plot = scene.plots[0].to_string();
    let call = json!({ "p": plot, "k": "click-7f3a" });

    link.hold_replies_after(b"click-7f3a");
    let lost = server
        .gql(token, RESERVE, call.clone())
        .await
        .expect("an answer");
    assert_eq!(code_of(&lost), Some("SERVICE_UNAVAILABLE"), "{lost}");
    assert!(
        link.replies_held(),
        "the reserve went through; its answer did not"
    );
    let committed = count(
        &conn,
        "SELECT count(*) AS n FROM reservation WHERE status = 'ACTIVE'",
    )
    .await;
    assert_eq!(committed, 1, "the reservation committed all the same");

    // The link dies and comes back; the client retries with its key until
    // the server answers (its one connection is being replaced meanwhile).
    link.cut();
    link.resume();
    link.restore();
    let started = Instant::now();
    let answer: Value = loop {
        let body = server
            .gql(token, RESERVE, call.clone())
            .await
            .expect("an answer");
        if body["data"]["reserveProperty"]["id"].is_string() {
            break body;
        }
        assert_eq!(code_of(&body), Some("SERVICE_UNAVAILABLE"), "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no answer: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let id = answer["data"]["reserveProperty"]["id"]
        .as_str()
        .expect("id");
    let stored = count(
        &conn,
        &format!("SELECT count(*) AS n FROM reservation WHERE id = '{id}' AND status = 'ACTIVE'"),
    )
    .await;
    assert_eq!(
        stored, 1,
        "the retry answers the reservation that committed"
    );
    assert_eq!(
        count(&conn, "SELECT count(*) AS n FROM reservation").await,
        1,
        "and no other"
    );

    // Without the key, the same retry could not tell: the plot is taken.
    let keyless = server
        .gql(token, RESERVE, json!({ "p": plot }))
        .await
        .expect("an answer");
    assert_eq!(code_of(&keyless), Some("PROPERTY_UNAVAILABLE"), "{keyless}");
    let metrics = server.get("/metrics").await.1;
    assert_eq!(
        sample(
            &metrics,
            "holdfast_reservations_total{outcome=\"replayed\"}"
        ),
        1.0
    );
    assert_audit_clean(&db.url).await;
}
