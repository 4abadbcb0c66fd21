//! Who a hold is for, over GraphQL: the buyer and note are shown to the
//! hold's agent, managers and admins, and hidden from other agents; a retry
//! with the idempotency key of a call answers that call's reservation.

use holdfast_domain::entities::Role;
use serde_json::{Value, json};

use crate::helpers::{assert_error, spawn_app};

const RESERVE: &str = "mutation($p: ID!, $buyer: BuyerInput, $note: String, $key: String) { \
     reserveProperty(propertyId: $p, buyer: $buyer, note: $note, idempotencyKey: $key) { \
       id status buyer { name phone email } note } }";

const HOLD: &str =
    "query($id: ID!) { reservation(id: $id) { id buyer { name phone email } note } }";

fn sharmas() -> Value {
    json!({ "name": "The Sharmas", "phone": "+91 98765 43210", "email": "sharma@example.com" })
}

#[tokio::test]
async fn the_buyer_and_note_are_shown_to_the_agent_and_managers_and_hidden_from_other_agents() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let alice = app.member(&ws, Role::SalesAgent, "Alice").await;
    let bob = app.member(&ws, Role::SalesAgent, "Bob").await;
    let max = app.member(&ws, Role::Manager, "Max").await;
    let (_, plots) = app.project(&max.token, "Riverside", &["A-017"]).await;

    let data = app
        .ok(
            &alice.token,
            RESERVE,
            json!({ "p": plots[0], "buyer": sharmas(), "note": "talking to their bank" }),
        )
        .await;
    let held = &data["reserveProperty"];
    assert_eq!(held["buyer"], sharmas());
    assert_eq!(held["note"], "talking to their bank");
    let id = held["id"].as_str().expect("id");

    for who in [&alice, &max, &ws.admin] {
        let seen = app.ok(&who.token, HOLD, json!({ "id": id })).await;
        assert_eq!(seen["reservation"]["buyer"], sharmas(), "{seen}");
        assert_eq!(seen["reservation"]["note"], "talking to their bank");
    }
    let hidden = app.ok(&bob.token, HOLD, json!({ "id": id })).await;
    assert_eq!(
        hidden["reservation"]["id"], id,
        "the hold itself is visible"
    );
    assert_eq!(hidden["reservation"]["buyer"], Value::Null);
    assert_eq!(hidden["reservation"]["note"], Value::Null);
    let listed = app
        .ok(
            &bob.token,
            "{ reservations { nodes { buyer { name } note } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["reservations"]["nodes"][0]["buyer"], Value::Null);
    app.assert_consistent().await;
}

#[tokio::test]
async fn a_retry_with_the_key_answers_the_first_call_and_a_reused_key_or_a_bad_buyer_is_bad_input()
{
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let alice = app.member(&ws, Role::SalesAgent, "Alice").await;
    let (_, plots) = app
        .project(&ws.admin.token, "Riverside", &["A-017", "A-018"])
        .await;
    let call = |plot: &str, key: &str| json!({ "p": plot, "buyer": sharmas(), "key": key });

    let first = app
        .ok(&alice.token, RESERVE, call(&plots[0], "try-1"))
        .await;
    let again = app
        .ok(&alice.token, RESERVE, call(&plots[0], "try-1"))
        .await;
    assert_eq!(
        first, again,
        "the retry answers the first call's reservation"
    );
    let held = app
        .ok(
            &alice.token,
            "{ me { activeReservations { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        held["me"]["activeReservations"].as_array().map(Vec::len),
        Some(1)
    );

    let reused = app
        .gql(Some(&alice.token), RESERVE, call(&plots[1], "try-1"))
        .await;
    assert_error(&reused, "BAD_USER_INPUT", 400);

    for buyer in [
        json!({ "name": "" }),
        json!({ "name": "Ann", "phone": "call me" }),
        json!({ "name": "Ann", "email": "nope" }),
        json!({ "name": "x".repeat(201) }),
    ] {
        let bad = app
            .gql(
                Some(&alice.token),
                RESERVE,
                json!({ "p": plots[1], "buyer": buyer }),
            )
            .await;
        assert_error(&bad, "BAD_USER_INPUT", 400);
    }
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    assert!(
        metrics.contains("holdfast_reservations_total{outcome=\"replayed\"}"),
        "a replay is counted as one"
    );
    assert!(metrics.contains("holdfast_reservations_total{outcome=\"bad_input\"}"));
    app.assert_consistent().await;
}
