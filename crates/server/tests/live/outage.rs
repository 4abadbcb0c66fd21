//! A Redis outage ends live subscriptions cleanly (an error, then complete),
//! refuses new ones while it lasts, and subscriptions work again after it.

use std::time::{Duration, Instant};

use crate::helpers::{Client, Protocol, Seen, TcpProxy, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_ends_subscriptions_with_an_error_and_they_work_again_after_it() {
    let world = World::new().await;
    let acme = world.workspace("Acme", 2).await;
    let redis = TcpProxy::redis().await;
    let server = world
        .server_with(|c| c.deployment.redis_url = redis.url())
        .await;
    let mut client = Client::subscribe(&server, Protocol::TransportWs, &acme.agent, None).await;
    server.wait_subscribers(1).await;
    let reservation = server.reserve(&acme.agent, acme.plot(0, 0)).await;
    assert_eq!(
        client.change(Duration::from_secs(2)).await["status"],
        "RESERVED"
    );

    redis.cut();
    match client.next(Duration::from_secs(10)).await {
        Some(Seen::Errors(errors)) => {
            assert_eq!(
                errors[0]["extensions"]["code"], "SERVICE_UNAVAILABLE",
                "{errors}"
            );
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert_eq!(
        client.next(Duration::from_secs(2)).await,
        Some(Seen::Complete)
    );

    // A change made meanwhile stands; its publication fails, and is counted.
    server.release(&acme.agent, &reservation).await;
    let metrics = server.metrics().await;
    assert!(
        crate::helpers::sample(&metrics, "holdfast_event_publish_failures_total") >= 1.0,
        "the failed publication is counted"
    );

    // While Redis is away a new subscription is refused at once, and the
    // connection stays open.
    client.start(crate::helpers::SUBSCRIPTION, None).await;
    match client.next(Duration::from_secs(5)).await {
        Some(Seen::Errors(errors)) => {
            assert_eq!(
                errors[0]["extensions"]["code"], "SERVICE_UNAVAILABLE",
                "{errors}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        client.next(Duration::from_secs(2)).await,
        Some(Seen::Complete)
    );

    // Redis comes back: subscribing again works (the hub reconnects within
    // its 2 s back-off), and changes flow.
    redis.restore();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        client.start(crate::helpers::SUBSCRIPTION, None).await;
        match client.next(Duration::from_millis(500)).await {
            None => break, // subscribed: nothing to say until a change
            Some(Seen::Errors(_)) => {
                assert_eq!(
                    client.next(Duration::from_secs(2)).await,
                    Some(Seen::Complete)
                );
                assert!(
                    Instant::now() < deadline,
                    "no subscription 10 s after Redis is back"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    server.reserve(&acme.agent, acme.plot(0, 1)).await;
    let change = client.change(Duration::from_secs(2)).await;
    assert_eq!(change["property"]["id"], acme.plot(0, 1).to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_shutting_down_closes_subscriptions_with_1001_going_away() {
    let world = World::new().await;
    let acme = world.workspace("Acme", 1).await;
    let mut server = world.server().await;
    let mut client = Client::subscribe(&server, Protocol::TransportWs, &acme.agent, None).await;
    server.wait_subscribers(1).await;
    server.shut_down();
    match client.next(Duration::from_secs(5)).await {
        Some(Seen::Closed(code, reason)) => assert_eq!(code, 1001, "{reason}"),
        other => panic!("expected a close with 1001, got {other:?}"),
    }
}
