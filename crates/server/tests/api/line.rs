//! The line behind a held plot, over GraphQL: joining (a free plot at once,
//! a held one at the end of the line), the errors of the contract, leaving
//! by whom may, what each role sees of a line, and a release handing the
//! plot to the first in line.

use holdfast_domain::entities::Role;
use serde_json::{Value, json};

use crate::helpers::{assert_error, spawn_app, spawn_app_with};

const JOIN: &str = "mutation($p: ID!, $buyer: BuyerInput) { joinQueue(propertyId: $p, buyer: $buyer) { \
     id status position buyer { name } agent { name } reservation { id status agent { name } buyer { name } queueEntry { id } } } }";

const LEAVE: &str = "mutation($e: ID!) { leaveQueue(entryId: $e) { id status position endedAt } }";

const LINE: &str = "query($p: ID!) { property(id: $p) { status queueLength \
     queue { nodes { id position status agent { name } buyer { name } } } } }";

fn buyer(name: &str) -> Value {
    json!({ "name": name })
}

#[tokio::test]
async fn joining_a_free_plot_holds_it_and_a_held_one_waits_at_the_end_of_the_line() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let alice = app.member(&ws, Role::SalesAgent, "Alice").await;
    let bob = app.member(&ws, Role::SalesAgent, "Bob").await;
    let carol = app.member(&ws, Role::SalesAgent, "Carol").await;
    let (_, plots) = app.project(&ws.admin.token, "Riverside", &["A-017"]).await;

    let first = app
        .ok(
            &alice.token,
            JOIN,
            json!({ "p": plots[0], "buyer": buyer("The Sharmas") }),
        )
        .await;
    let entry = &first["joinQueue"];
    assert_eq!(entry["status"], "PROMOTED", "{first}");
    assert_eq!(entry["position"], Value::Null);
    assert_eq!(entry["reservation"]["status"], "ACTIVE");
    assert_eq!(entry["reservation"]["buyer"]["name"], "The Sharmas");
    assert_eq!(entry["reservation"]["queueEntry"]["id"], entry["id"]);

    for (who, name, place) in [(&bob, "The Kapoors", 1), (&carol, "The Mehtas", 2)] {
        let joined = app
            .ok(
                &who.token,
                JOIN,
                json!({ "p": plots[0], "buyer": buyer(name) }),
            )
            .await;
        assert_eq!(joined["joinQueue"]["status"], "WAITING");
        assert_eq!(joined["joinQueue"]["position"], place);
        assert_eq!(joined["joinQueue"]["reservation"], Value::Null);
    }
    let line = app
        .ok(&ws.admin.token, LINE, json!({ "p": plots[0] }))
        .await;
    assert_eq!(line["property"]["status"], "RESERVED");
    assert_eq!(line["property"]["queueLength"], 2);
    let names: Vec<_> = line["property"]["queue"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["position"].as_i64(),
                n["agent"]["name"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            (Some(1), Some("Bob".to_owned())),
            (Some(2), Some("Carol".to_owned()))
        ]
    );
    app.assert_consistent().await;
}

#[tokio::test]
async fn the_line_answers_already_queued_queue_full_and_unavailable_as_the_contract_says() {
    let app = spawn_app_with(|c| c.rules.max_queue_length = 1).await;
    let ws = app.bootstrap("Acme").await;
    let alice = app.member(&ws, Role::SalesAgent, "Alice").await;
    let bob = app.member(&ws, Role::SalesAgent, "Bob").await;
    let carol = app.member(&ws, Role::SalesAgent, "Carol").await;
    let (_, plots) = app
        .project(&ws.admin.token, "Riverside", &["A-017", "A-018"])
        .await;
    app.reserve(&alice.token, &plots[0]).await;
    app.ok(&bob.token, JOIN, json!({ "p": plots[0] })).await;

    let join = |token: String, plot: String| {
        let app = &app;
        async move { app.gql(Some(&token), JOIN, json!({ "p": plot })).await }
    };
    assert_error(
        &join(alice.token.clone(), plots[0].clone()).await,
        "ALREADY_QUEUED",
        409,
    );
    assert_error(
        &join(bob.token.clone(), plots[0].clone()).await,
        "ALREADY_QUEUED",
        409,
    );
    let full = join(carol.token.clone(), plots[0].clone()).await;
    assert_error(&full, "QUEUE_FULL", 409);
    assert_eq!(full["errors"][0]["extensions"]["limit"], 1, "{full}");

    let sold = app.reserve(&carol.token, &plots[1]).await;
    app.ok(
        &carol.token,
        "mutation($r: ID!) { convertReservation(reservationId: $r) { id } }",
        json!({ "r": sold["data"]["reserveProperty"]["id"] }),
    )
    .await;
    assert_error(
        &join(bob.token.clone(), plots[1].clone()).await,
        "PROPERTY_UNAVAILABLE",
        409,
    );
    assert_error(
        &join(bob.token.clone(), "not-an-id".into()).await,
        "BAD_USER_INPUT",
        400,
    );
    let bad_buyer = app
        .gql(
            Some(&carol.token),
            JOIN,
            json!({ "p": plots[0], "buyer": { "name": "" } }),
        )
        .await;
    assert_error(&bad_buyer, "BAD_USER_INPUT", 400);
    app.assert_consistent().await;
}

#[tokio::test]
async fn an_entry_leaves_by_its_agent_or_a_manager_and_other_agents_are_forbidden() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let alice = app.member(&ws, Role::SalesAgent, "Alice").await;
    let bob = app.member(&ws, Role::SalesAgent, "Bob").await;
    let carol = app.member(&ws, Role::SalesAgent, "Carol").await;
    let max = app.member(&ws, Role::Manager, "Max").await;
    let (_, plots) = app.project(&ws.admin.token, "Riverside", &["A-017"]).await;
    app.reserve(&alice.token, &plots[0]).await;
    let mut entries = Vec::new();
    for who in [&bob, &carol] {
        let joined = app.ok(&who.token, JOIN, json!({ "p": plots[0] })).await;
        entries.push(joined["joinQueue"]["id"].as_str().expect("id").to_owned());
    }

    let refused = app
        .gql(Some(&carol.token), LEAVE, json!({ "e": entries[0] }))
        .await;
    assert_error(&refused, "FORBIDDEN", 403);
    let left = app.ok(&bob.token, LEAVE, json!({ "e": entries[0] })).await;
    assert_eq!(left["leaveQueue"]["status"], "LEFT");
    assert!(left["leaveQueue"]["endedAt"].is_string());
    let again = app.ok(&bob.token, LEAVE, json!({ "e": entries[0] })).await;
    assert_eq!(
        again["leaveQueue"]["status"], "LEFT",
        "leaving twice is harmless"
    );

    let line = app.ok(&carol.token, LINE, json!({ "p": plots[0] })).await;
    assert_eq!(
        line["property"]["queue"]["nodes"][0]["position"], 1,
        "Carol moved up"
    );

    let removed = app.ok(&max.token, LEAVE, json!({ "e": entries[1] })).await;
    assert_eq!(removed["leaveQueue"]["status"], "LEFT");

    let other = app.bootstrap("Other").await;
    assert_error(
        &app.gql(Some(&other.admin.token), LEAVE, json!({ "e": entries[1] }))
            .await,
        "NOT_FOUND",
        404,
    );
    app.assert_consistent().await;
}

#[tokio::test]
async fn an_agent_sees_the_line_but_only_their_own_buyers_and_their_own_entries() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let alice = app.member(&ws, Role::SalesAgent, "Alice").await;
    let bob = app.member(&ws, Role::SalesAgent, "Bob").await;
    let carol = app.member(&ws, Role::SalesAgent, "Carol").await;
    let max = app.member(&ws, Role::Manager, "Max").await;
    let (_, plots) = app.project(&ws.admin.token, "Riverside", &["A-017"]).await;
    app.reserve(&alice.token, &plots[0]).await;
    for (who, name) in [(&bob, "The Kapoors"), (&carol, "The Mehtas")] {
        app.ok(
            &who.token,
            JOIN,
            json!({ "p": plots[0], "buyer": buyer(name) }),
        )
        .await;
    }

    let seen_by_bob = app.ok(&bob.token, LINE, json!({ "p": plots[0] })).await;
    let nodes = &seen_by_bob["property"]["queue"]["nodes"];
    assert_eq!(nodes[0]["buyer"]["name"], "The Kapoors", "his own");
    assert_eq!(nodes[1]["buyer"], Value::Null, "not Carol's");
    let seen_by_max = app.ok(&max.token, LINE, json!({ "p": plots[0] })).await;
    assert_eq!(
        seen_by_max["property"]["queue"]["nodes"][1]["buyer"]["name"],
        "The Mehtas"
    );

    const ENTRIES: &str =
        "query($a: ID) { queueEntries(agentId: $a) { nodes { agent { name } position } } }";
    let own = app.ok(&bob.token, ENTRIES, json!({})).await;
    let agents: Vec<_> = own["queueEntries"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["agent"]["name"].clone())
        .collect();
    assert_eq!(agents, [json!("Bob")], "an agent's list is their own");
    assert_error(
        &app.gql(Some(&bob.token), ENTRIES, json!({ "a": carol.id }))
            .await,
        "FORBIDDEN",
        403,
    );
    let all = app.ok(&max.token, ENTRIES, json!({})).await;
    assert_eq!(
        all["queueEntries"]["nodes"].as_array().map(Vec::len),
        Some(2)
    );
    let carols = app.ok(&max.token, ENTRIES, json!({ "a": carol.id })).await;
    assert_eq!(carols["queueEntries"]["nodes"][0]["agent"]["name"], "Carol");
}

#[tokio::test]
async fn a_release_hands_the_plot_to_the_first_in_line_with_their_buyer() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let alice = app.member(&ws, Role::SalesAgent, "Alice").await;
    let bob = app.member(&ws, Role::SalesAgent, "Bob").await;
    let (_, plots) = app.project(&ws.admin.token, "Riverside", &["A-017"]).await;
    let held = app.reserve(&alice.token, &plots[0]).await;
    let joined = app
        .ok(
            &bob.token,
            JOIN,
            json!({ "p": plots[0], "buyer": buyer("The Kapoors") }),
        )
        .await;
    let entry = joined["joinQueue"]["id"].clone();

    app.ok(
        &alice.token,
        "mutation($r: ID!) { releaseReservation(reservationId: $r) { status } }",
        json!({ "r": held["data"]["reserveProperty"]["id"] }),
    )
    .await;

    let now = app
        .ok(
            &bob.token,
            "query($p: ID!) { property(id: $p) { status queueLength reservedBy { name } \
               activeReservation { buyer { name } queueEntry { id status } } } }",
            json!({ "p": plots[0] }),
        )
        .await;
    let p = &now["property"];
    assert_eq!(p["status"], "RESERVED");
    assert_eq!(p["queueLength"], 0);
    assert_eq!(p["reservedBy"]["name"], "Bob");
    assert_eq!(p["activeReservation"]["buyer"]["name"], "The Kapoors");
    assert_eq!(p["activeReservation"]["queueEntry"]["id"], entry);
    assert_eq!(p["activeReservation"]["queueEntry"]["status"], "PROMOTED");
    app.assert_consistent().await;
}
