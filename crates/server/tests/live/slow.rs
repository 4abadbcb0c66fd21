//! A subscriber that falls behind is dropped, with close code 4413 after an
//! error saying so, and the others keep receiving everything.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use crate::helpers::{Client, Protocol, Seen, World};

// The fast subscriber must never fall BUFFER changes behind, even when a
// loaded CI machine starves it for a moment (once 128 + 24 behind with a
// buffer of 128 and 300 changes); the slow one holds only a few changes in
// its socket buffers, so it still falls far more than BUFFER behind.
const CHANGES: usize = 600;
const BUFFER: usize = 256;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_falls_behind_is_dropped_with_4413_while_another_gets_every_change() {
    let world = World::new().await;
    let acme = world.workspace("Acme", CHANGES).await;
    let server = world
        .server_with(|c| {
            c.subscriber_buffer = BUFFER;
            c.rules.max_active_per_agent = 0;
        })
        .await;

    let mut fast = Client::subscribe(&server, Protocol::TransportWs, &acme.manager, None).await;
    // The slow one asks for large messages and has a small socket buffer,
    // so that the server's sends block after a few changes it leaves unread.
    let aliases: String = (0..2000).map(|i| format!(" a{i}: at")).collect();
    let heavy =
        format!("subscription {{ propertyChanged {{ property {{ id code }} status{aliases} }} }}");
    let mut slow =
        Client::open_with_receive_buffer(&server.ws_url(), Protocol::TransportWs, Some(4096)).await;
    let ack = slow
        .init(json!({ "Authorization": format!("Bearer {}", acme.agent) }))
        .await;
    assert_eq!(ack, Seen::Complete);
    slow.start(&heavy, None).await;
    server.wait_subscribers(2).await;

    // The fast subscriber reads all the time, beside the changes being made.
    let reader = tokio::spawn(async move {
        let mut seen = Vec::with_capacity(CHANGES);
        while seen.len() < CHANGES {
            let change = fast.change(Duration::from_secs(10)).await;
            seen.push(change["property"]["id"].as_str().expect("id").to_owned());
        }
        seen
    });
    let plots: Vec<_> = (0..CHANGES).map(|i| acme.plot(0, i)).collect();
    futures::stream::iter(plots.clone())
        .for_each_concurrent(4, |plot| {
            let (server, token) = (&server, &acme.agent);
            async move {
                server.reserve(token, plot).await;
            }
        })
        .await;
    let seen = tokio::time::timeout(Duration::from_secs(20), reader)
        .await
        .expect("the fast subscriber keeps up")
        .expect("reader");
    let mut seen_sorted = seen.clone();
    seen_sorted.sort();
    seen_sorted.dedup();
    assert_eq!(seen_sorted.len(), CHANGES, "every change, once each");

    // Now the slow one reads: a few changes, the error, and the close.
    let mut changes = 0;
    let mut error = None;
    let closed = loop {
        match slow.next(Duration::from_secs(10)).await {
            Some(Seen::Change(_)) => changes += 1,
            Some(Seen::Errors(errors)) => error = Some(errors),
            // The subscription may say it completed before the close.
            Some(Seen::Complete) => {}
            Some(Seen::Closed(code, reason)) => break (code, reason),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(closed.0, 4413, "closed as too slow: {closed:?}");
    assert!(
        changes < CHANGES,
        "the slow subscriber was cut short ({changes} changes)"
    );
    let error = error.expect("an error said why before the close");
    assert_eq!(
        error[0]["extensions"]["code"], "SUBSCRIBER_TOO_SLOW",
        "{error}"
    );
    let metrics = server.metrics().await;
    assert!(
        crate::helpers::sample(
            &metrics,
            "holdfast_subscribers_dropped_total{reason=\"lagged\"}"
        ) >= 1.0,
        "the drop is counted"
    );
}
