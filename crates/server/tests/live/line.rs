//! The line behind a held plot, live: a promotion is one `propertyChanged`
//! (RESERVED to RESERVED, a new holder) and a `PROMOTED` hold event to the
//! new holder; an extension tells boards the new end; a sale ends the rest
//! of the line with `QUEUE_ENDED`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Client, Protocol, Seen, World};

const HOLD_EVENTS: &str = "subscription { holdEvents { kind \
     reservation { id status buyer { name } } queueEntry { id status } } }";

const CHANGES: &str = "subscription($p: ID) { propertyChanged(projectId: $p) { \
     property { code status reservedBy { id } reservedUntil } previousStatus status } }";

const WITHIN: Duration = Duration::from_secs(2);

async fn subscribe(
    server: &crate::helpers::Server,
    token: &str,
    query: &str,
    vars: Value,
) -> Client {
    let mut client = Client::open(server, Protocol::TransportWs).await;
    let ack = client
        .init(json!({ "Authorization": format!("Bearer {token}") }))
        .await;
    assert_eq!(ack, Seen::Complete);
    client.start_with(query, vars).await;
    client
}

async fn join(server: &crate::helpers::Server, token: &str, plot: String, buyer: &str) -> String {
    let data = server
        .ok(
            token,
            "mutation($p: ID!, $b: BuyerInput) { joinQueue(propertyId: $p, buyer: $b) { id status } }",
            json!({ "p": plot, "b": { "name": buyer } }),
        )
        .await;
    assert_eq!(data["joinQueue"]["status"], "WAITING");
    data["joinQueue"]["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_an_extension_and_a_sale_reach_the_board_and_the_people_in_line() {
    let world = World::new().await;
    let team = world.workspace("Acme", 1).await;
    let (bob_actor, carol_actor) = (
        team.another_agent(&world).await,
        team.another_agent(&world).await,
    );
    let (bob, carol) = (world.token(&bob_actor), world.token(&carol_actor));
    let server = world.server().await;
    let plot = team.plot(0, 0);

    let mut board = subscribe(
        &server,
        &team.manager,
        CHANGES,
        json!({ "p": team.project(0).to_string() }),
    )
    .await;
    let mut bobs = subscribe(&server, &bob, HOLD_EVENTS, json!({})).await;
    let mut carols = subscribe(&server, &carol, HOLD_EVENTS, json!({})).await;
    server.wait_subscribers(3).await;

    let held = server.reserve(&team.agent, plot).await;
    let reserved = board.change(WITHIN).await;
    assert_eq!(
        (
            reserved["previousStatus"].as_str(),
            reserved["status"].as_str()
        ),
        (Some("AVAILABLE"), Some("RESERVED"))
    );
    let bobs_entry = join(&server, &bob, plot.to_string(), "The Kapoors").await;
    join(&server, &carol, plot.to_string(), "The Mehtas").await;

    // The release hands the plot to Bob: one change, and Bob hears it is his.
    server.release(&team.agent, &held).await;
    let promotion = board.change(WITHIN).await;
    assert_eq!(promotion["previousStatus"], "RESERVED", "{promotion}");
    assert_eq!(promotion["status"], "RESERVED");
    assert_eq!(
        promotion["property"]["reservedBy"]["id"],
        bob_actor.user_id.to_string()
    );
    let promoted = bobs.change(WITHIN).await;
    assert_eq!(promoted["kind"], "PROMOTED", "{promoted}");
    assert_eq!(promoted["queueEntry"]["id"], bobs_entry);
    assert_eq!(promoted["queueEntry"]["status"], "PROMOTED");
    assert_eq!(promoted["reservation"]["status"], "ACTIVE");
    assert_eq!(promoted["reservation"]["buyer"]["name"], "The Kapoors");
    let bobs_hold = promoted["reservation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // A manager extends Bob's hold: the board hears the new end.
    let extended = server
        .ok(
            &team.manager,
            "mutation($id: ID!) { extendReservation(reservationId: $id) { expiresAt } }",
            json!({ "id": bobs_hold }),
        )
        .await;
    let moved = board.change(WITHIN).await;
    assert_eq!(
        (moved["previousStatus"].as_str(), moved["status"].as_str()),
        (Some("RESERVED"), Some("RESERVED"))
    );
    assert_eq!(
        moved["property"]["reservedUntil"]
            .as_str()
            .map(|t| t.parse::<chrono::DateTime<chrono::Utc>>().expect("time")),
        extended["extendReservation"]["expiresAt"]
            .as_str()
            .map(|t| t.parse().expect("time")),
    );
    assert_eq!(bobs.change(WITHIN).await["kind"], "EXTENDED");

    // Bob sells: Carol's place in line ends, and she hears why.
    server.convert(&bob, &bobs_hold).await;
    let sold = board.change(WITHIN).await;
    assert_eq!(sold["status"], "SOLD");
    let ended = carols.change(WITHIN).await;
    assert_eq!(ended["kind"], "QUEUE_ENDED", "{ended}");
    assert_eq!(ended["queueEntry"]["status"], "CLOSED");
    assert_eq!(ended["reservation"], Value::Null);
    carols.nothing_for(Duration::from_millis(300)).await;
}
