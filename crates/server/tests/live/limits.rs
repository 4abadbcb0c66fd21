//! The query limits hold over `/graphql/ws` too: a subscription (or a query
//! sent over the socket) that is too deep or asks for too long a page, or
//! that does not parse or validate, is refused before it starts, with the
//! same error as over HTTP.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Client, Protocol, Seen, World};

const WITHIN: Duration = Duration::from_secs(5);

fn assert_bad_user_input(seen: Option<Seen>, message_part: &str) {
    let Some(Seen::Errors(errors)) = seen else {
        panic!("expected errors, got {seen:?}");
    };
    let error = &errors[0];
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{errors}");
    assert_eq!(error["extensions"]["status"], 400, "{errors}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains(message_part), "{errors}");
}

#[tokio::test]
async fn a_subscription_over_the_query_limits_is_refused_before_it_starts_in_both_protocols() {
    let world = World::new().await;
    let acme = world.workspace("Acme", 1).await;
    let server = world.server().await;
    let too_long_a_page = "subscription($p: ID) { propertyChanged(projectId: $p) { property { \
                           project { properties(first: 1000) { nodes { id } } } } } }";
    let too_deep = "subscription($p: ID) { propertyChanged(projectId: $p) { property { project { \
                    properties { nodes { activeReservation { agent { activeReservations { \
                    property { project { properties { nodes { code } } } } } } } } } } } } }";
    for protocol in [Protocol::TransportWs, Protocol::LegacyWs] {
        for (query, refusal) in [
            (too_long_a_page, "first is 1000"),
            (too_deep, "nested too deep"),
        ] {
            let mut client =
                Client::subscribe_with(&server, protocol, &acme.agent, query, None).await;
            assert_bad_user_input(client.next(WITHIN).await, refusal);
        }
    }
    // Within the limits, the same socket path subscribes as ever.
    let mut client = Client::subscribe(&server, Protocol::TransportWs, &acme.agent, None).await;
    server.wait_subscribers(1).await;
    server.reserve(&acme.agent, acme.plot(0, 0)).await;
    let change: Value = client.change(WITHIN).await;
    assert_eq!(change["status"], "RESERVED");
}

#[tokio::test]
async fn a_subscription_that_does_not_parse_or_validate_is_refused_as_bad_user_input_in_both_protocols()
 {
    let world = World::new().await;
    let acme = world.workspace("Acme", 1).await;
    let server = world.server().await;
    for protocol in [Protocol::TransportWs, Protocol::LegacyWs] {
        for (query, refusal) in [
            ("subscription { propertyChanged { nope } }", "nope"),
            (
                "subscription { propertyChanged(projectId: 7, color: RED) { status } }",
                "color",
            ),
            ("subscription { propertyChanged {", "expected"),
        ] {
            let mut client =
                Client::subscribe_with(&server, protocol, &acme.agent, query, None).await;
            assert_bad_user_input(client.next(WITHIN).await, refusal);
        }
    }
}
