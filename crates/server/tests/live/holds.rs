//! Hold events over `holdEvents`: an agent hears of their own holds (the
//! warning before the end, an extension, a release, the expiry) from
//! whichever process made them; a manager hears of any agent's; an agent
//! may not listen to another's.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::helpers::{Client, Protocol, Seen, World};

const HOLD_EVENTS: &str = "subscription($a: ID) { holdEvents(agentId: $a) { kind at \
     reservation { id status expiresAt buyer { name } property { code } } } }";

/// How late an event may arrive after it was due: due times are whole
/// seconds, rounded up, and the worker polls four times a second.
const LATE: Duration = Duration::from_secs(2);

async fn listen(server: &crate::helpers::Server, token: &str, agent: Option<&str>) -> Client {
    let mut client = Client::open(server, Protocol::TransportWs).await;
    let ack = client
        .init(json!({ "Authorization": format!("Bearer {token}") }))
        .await;
    assert_eq!(ack, Seen::Complete);
    client.start_with(HOLD_EVENTS, json!({ "a": agent })).await;
    client
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().expect("a time").parse().expect("RFC 3339")
}

/// Waits for the next event of `kind`; fails on any other.
async fn event(client: &mut Client, kind: &str, within: Duration) -> Value {
    let event = client.change(within).await;
    assert_eq!(event["kind"], kind, "{event}");
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_is_warned_before_a_hold_ends_not_after_a_release_and_again_after_an_extension() {
    let world = World::new().await;
    let team = world.workspace("Acme", 2).await;
    let rules = |c: &mut holdfast_server::Config| {
        c.rules.reservation_ttl = Duration::from_secs(6).into();
        c.rules.expiry_warning =
            holdfast_runtime::settings::DurationOrOff(Some(Duration::from_secs(3)));
    };
    let server = world.server_with(rules).await;
    let _worker = world
        .worker_with(
            "off",
            &["--reservation-ttl", "6s", "--expiry-warning", "3s"],
        )
        .await;
    let mut agent = listen(&server, &team.agent, None).await;
    server.wait_subscribers(1).await;

    // A hold released at once is announced when it begins and ends, and
    // never warned.
    let released = server.reserve(&team.agent, team.plot(0, 1)).await;
    server.release(&team.agent, &released).await;
    let begun = event(&mut agent, "RESERVED", LATE).await;
    assert_eq!(begun["reservation"]["id"], released);
    let gone = event(&mut agent, "RELEASED", LATE).await;
    assert_eq!(gone["reservation"]["id"], released);

    let data = server
        .ok(
            &team.agent,
            "mutation($p: ID!) { reserveProperty(propertyId: $p, buyer: { name: \"The Sharmas\" }) \
               { id expiresAt } }",
            json!({ "p": team.plot(0, 0).to_string() }),
        )
        .await;
    let held = data["reserveProperty"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let expires_at = time(&data["reserveProperty"]["expiresAt"]);
    let begun = event(&mut agent, "RESERVED", LATE).await;
    assert_eq!(begun["reservation"]["buyer"]["name"], "The Sharmas");

    let warned = event(&mut agent, "EXPIRING", Duration::from_secs(6)).await;
    let received = Utc::now();
    let due = expires_at - chrono::Duration::seconds(3);
    assert!(received >= due, "warned {:?} early", due - received);
    assert!(
        (received - due).to_std().unwrap_or_default() < LATE,
        "warned {:?} after it was due",
        received - due
    );
    assert_eq!(warned["reservation"]["id"], held);
    assert_eq!(warned["reservation"]["status"], "ACTIVE");
    assert_eq!(warned["reservation"]["buyer"]["name"], "The Sharmas");
    assert_eq!(warned["reservation"]["property"]["code"], "P-00000");

    // A manager extends it: the agent hears so, and is warned again before
    // the new end.
    let extended = server
        .ok(
            &team.manager,
            "mutation($id: ID!) { extendReservation(reservationId: $id) { expiresAt } }",
            json!({ "id": held }),
        )
        .await;
    let new_end = time(&extended["extendReservation"]["expiresAt"]);
    event(&mut agent, "EXTENDED", LATE).await;
    event(&mut agent, "EXPIRING", Duration::from_secs(6)).await;
    let received = Utc::now();
    let due = new_end - chrono::Duration::seconds(3);
    assert!(received >= due, "warned {:?} early", due - received);
    assert!((received - due).to_std().unwrap_or_default() < LATE);

    // Then it runs out, and the worker's job ends it.
    let expired = event(&mut agent, "EXPIRED", Duration::from_secs(6)).await;
    assert_eq!(expired["reservation"]["status"], "EXPIRED");
    agent.nothing_for(Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_follows_one_agent_or_all_and_an_agent_only_themselves() {
    let world = World::new().await;
    let team = world.workspace("Acme", 2).await;
    let colleague = world.token(&team.another_agent(&world).await);
    let server = world.server().await;

    let mut all = listen(&server, &team.manager, None).await;
    let me = server.ok(&team.agent, "{ me { id } }", json!({})).await["me"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut one = listen(&server, &team.manager, Some(&me)).await;
    let mut nosy = listen(&server, &colleague, Some(&me)).await;
    match nosy.next(LATE).await {
        Some(Seen::Errors(errors)) => {
            assert_eq!(errors[0]["extensions"]["code"], "FORBIDDEN", "{errors}")
        }
        other => panic!("expected FORBIDDEN, got {other:?}"),
    }
    server.wait_subscribers(2).await;

    let theirs = server.reserve(&colleague, team.plot(0, 1)).await;
    server.release(&colleague, &theirs).await;
    let mine = server.reserve(&team.agent, team.plot(0, 0)).await;
    server.release(&team.agent, &mine).await;

    // The manager hears both agents' holds begin and end, in order.
    for (kind, id) in [
        ("RESERVED", &theirs),
        ("RELEASED", &theirs),
        ("RESERVED", &mine),
        ("RELEASED", &mine),
    ] {
        let seen = event(&mut all, kind, LATE).await;
        assert_eq!(&seen["reservation"]["id"], id, "{kind}");
    }
    for kind in ["RESERVED", "RELEASED"] {
        let followed = event(&mut one, kind, LATE).await;
        assert_eq!(
            followed["reservation"]["id"], mine,
            "only the agent followed"
        );
    }
    one.nothing_for(Duration::from_millis(300)).await;
}
