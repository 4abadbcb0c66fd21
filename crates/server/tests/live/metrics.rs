//! /metrics moves as a scenario of reserves, releases and an expiry runs:
//! the server is the real binary, the worker runs in this process, so each
//! has a Prometheus registry of its own.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{BinaryServer, Client, Protocol, World, eventually, sample};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_and_gauges_follow_reserves_releases_and_an_expiry() {
    let world = World::new().await;
    let acme = world.workspace("Acme", 4).await;
    let binary = BinaryServer::start(
        &world,
        &[
            ("HOLDFAST_RESERVATION_TTL", "2s"),
            ("HOLDFAST_MAX_ACTIVE_PER_AGENT", "0"),
            ("HOLDFAST_DB_MAX_CONNECTIONS", "7"),
        ],
    )
    .await;
    let server = binary.server();
    let _subscriber = Client::subscribe(&server, Protocol::TransportWs, &acme.manager, None).await;
    server.wait_subscribers(1).await;

    // Three holds; one refused; one released by its agent, one by a manager.
    let a = server.reserve(&acme.agent, acme.plot(0, 0)).await;
    let b = server.reserve(&acme.agent, acme.plot(0, 1)).await;
    server.reserve(&acme.agent, acme.plot(0, 2)).await;
    let refused = server
        .gql(
            &acme.manager,
            "mutation($id: ID!) { reserveProperty(propertyId: $id) { id } }",
            json!({ "id": acme.plot(0, 0).to_string() }),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"],
        "PROPERTY_UNAVAILABLE"
    );
    server.release(&acme.agent, &a).await;
    server.release(&acme.manager, &b).await;

    let m = server.metrics().await;
    assert_eq!(
        sample(&m, "holdfast_reservations_total{outcome=\"reserved\"}"),
        3.0
    );
    assert_eq!(
        sample(&m, "holdfast_reservations_total{outcome=\"unavailable\"}"),
        1.0
    );
    assert_eq!(sample(&m, "holdfast_releases_total{source=\"agent\"}"), 1.0);
    assert_eq!(
        sample(&m, "holdfast_releases_total{source=\"manager\"}"),
        1.0
    );
    assert_eq!(
        sample(&m, "holdfast_events_published_total"),
        5.0,
        "3 holds, 2 releases"
    );
    assert_eq!(
        sample(&m, "holdfast_release_jobs_enqueue_failures_total"),
        0.0
    );
    assert!(sample(&m, "holdfast_graphql_request_duration_seconds_count") >= 6.0);
    assert_eq!(sample(&m, "holdfast_subscribers_connected"), 1.0);
    assert_eq!(sample(&m, "holdfast_ws_connections"), 1.0);
    assert_eq!(sample(&m, "holdfast_db_connections{state=\"max\"}"), 7.0);
    assert!(sample(&m, "holdfast_db_connections{state=\"idle\"}") >= 1.0);
    assert!(m.contains("holdfast_db_connections{state=\"in_use\"}"));
    // Three jobs were scheduled, none due yet.
    assert_eq!(sample(&m, "holdfast_release_jobs_due"), 0.0);

    // The third hold lapses with no worker running: its job is due.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let m = server.metrics().await;
    assert!(
        sample(&m, "holdfast_release_jobs_due") >= 1.0,
        "the lapsed hold's job is due: {}",
        sample(&m, "holdfast_release_jobs_due")
    );

    // The worker releases it, and says so in its own /metrics.
    let worker = world.worker("off").await;
    eventually(
        Duration::from_secs(10),
        "the job releases the hold",
        || async {
            sample(
                &worker.metrics().await,
                "holdfast_releases_total{source=\"job\"}",
            ) == 1.0
        },
    )
    .await;
    let w = worker.metrics().await;
    assert_eq!(
        sample(&w, "holdfast_release_lag_seconds_count{source=\"job\"}"),
        1.0
    );
    assert_eq!(sample(&w, "holdfast_events_published_total"), 1.0);
    assert!(w.contains("holdfast_db_connections{state=\"in_use\"}"));
    assert!(w.contains("holdfast_release_jobs_in_flight"));
    // Jobs of released holds find nothing to do; none is left due.
    eventually(Duration::from_secs(10), "no job is left due", || async {
        sample(&worker.metrics().await, "holdfast_release_jobs_due") == 0.0
    })
    .await;
    let m = server.metrics().await;
    assert_eq!(sample(&m, "holdfast_release_jobs_due"), 0.0);
    worker.stop().await;
}
