//! Every status change reaches the subscribers of its workspace, whichever
//! process made it, and only them.

use std::time::Duration;

use crate::helpers::{Client, Protocol, World};

const WITHIN: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_sees_a_reservation_on_another_server_its_expiry_by_the_worker_and_a_conversion()
 {
    let world = World::new().await;
    let acme = world.workspace("Acme", 3).await;
    let mut rival = world.workspace("Rival", 1).await;
    rival.add_project(&world, "Elsewhere", 1).await;
    let mut acme = acme;
    acme.add_project(&world, "Hillside", 1).await;

    // Holds last 1 s on the server that takes them.
    let watched = world.server().await;
    let other = world
        .server_with(|c| c.rules.reservation_ttl = Duration::from_secs(1).into())
        .await;
    let _worker = world.worker("off").await;

    let mut everything =
        Client::subscribe(&watched, Protocol::TransportWs, &acme.agent, None).await;
    let mut legacy = Client::subscribe(
        &watched,
        Protocol::LegacyWs,
        &acme.manager,
        Some(acme.project(0)),
    )
    .await;
    let mut other_project = Client::subscribe(
        &watched,
        Protocol::TransportWs,
        &acme.agent,
        Some(acme.project(1)),
    )
    .await;
    let mut other_workspace =
        Client::subscribe(&watched, Protocol::TransportWs, &rival.agent, None).await;
    watched.wait_subscribers(4).await;

    let plot = acme.plot(0, 0);
    let reservation = other.reserve(&acme.agent, plot).await;
    for client in [&mut everything, &mut legacy] {
        let change = client.change(WITHIN).await;
        assert_eq!(change["property"]["id"], plot.to_string());
        assert_eq!(change["property"]["code"], "P-00000");
        assert_eq!(change["previousStatus"], "AVAILABLE");
        assert_eq!(change["status"], "RESERVED");
        assert_eq!(change["property"]["status"], "RESERVED");
        assert!(change["property"]["reservedUntil"].is_string());
    }
    let _ = reservation;

    // The 1 s hold runs out and the worker's job releases it (due times are
    // whole seconds, polled every 250 ms); the release reaches the
    // subscribers within 2 s of its commit (`at`, the database's clock, on
    // this machine).
    for client in [&mut everything, &mut legacy] {
        let change = client.change(Duration::from_secs(8)).await;
        let received = chrono::Utc::now();
        assert_eq!(change["property"]["id"], plot.to_string());
        assert_eq!(change["previousStatus"], "RESERVED");
        assert_eq!(change["status"], "AVAILABLE");
        assert!(change["property"]["reservedUntil"].is_null());
        let at: chrono::DateTime<chrono::Utc> =
            change["at"].as_str().expect("at").parse().expect("a time");
        let delay = (received - at).to_std().unwrap_or_default();
        assert!(
            delay < WITHIN,
            "the release arrived {delay:?} after its commit"
        );
    }

    // A manager converts a fresh hold on the watched server itself.
    let second = acme.plot(0, 1);
    let reservation = watched.reserve(&acme.agent, second).await;
    watched.convert(&acme.manager, &reservation).await;
    for client in [&mut everything, &mut legacy] {
        let reserved = client.change(WITHIN).await;
        assert_eq!(reserved["status"], "RESERVED");
        let sold = client.change(WITHIN).await;
        assert_eq!(sold["property"]["id"], second.to_string());
        assert_eq!(sold["previousStatus"], "RESERVED");
        assert_eq!(sold["status"], "SOLD");
    }

    // Neither another project's subscriber nor another workspace's saw any of it.
    other_project.nothing_for(Duration::from_millis(300)).await;
    other_workspace
        .nothing_for(Duration::from_millis(300))
        .await;

    // They do see their own.
    other.reserve(&acme.agent, acme.plot(1, 0)).await;
    let change = other_project.change(WITHIN).await;
    assert_eq!(change["property"]["id"], acme.plot(1, 0).to_string());
    other.reserve(&rival.agent, rival.plot(0, 0)).await;
    assert_eq!(other_workspace.change(WITHIN).await["status"], "RESERVED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_and_a_takeover_and_the_sweep_are_seen_as_changes() {
    let world = World::new().await;
    let acme = world.workspace("Acme", 2).await;
    let server = world
        .server_with(|c| c.rules.reservation_ttl = Duration::from_secs(1).into())
        .await;
    let mut client = Client::subscribe(&server, Protocol::TransportWs, &acme.manager, None).await;
    server.wait_subscribers(1).await;

    // An agent's release.
    let r = server.reserve(&acme.agent, acme.plot(0, 0)).await;
    assert_eq!(client.change(WITHIN).await["status"], "RESERVED");
    server.release(&acme.agent, &r).await;
    let released = client.change(WITHIN).await;
    assert_eq!(
        (
            released["previousStatus"].as_str(),
            released["status"].as_str()
        ),
        (Some("RESERVED"), Some("AVAILABLE"))
    );

    // A lapsed hold taken over (no worker runs): its end, then the new hold.
    server.reserve(&acme.agent, acme.plot(0, 1)).await;
    assert_eq!(client.change(WITHIN).await["status"], "RESERVED");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    server.reserve(&acme.manager, acme.plot(0, 1)).await;
    let ended = client.change(WITHIN).await;
    assert_eq!(
        (ended["previousStatus"].as_str(), ended["status"].as_str()),
        (Some("RESERVED"), Some("AVAILABLE"))
    );
    let taken = client.change(WITHIN).await;
    assert_eq!(
        (taken["previousStatus"].as_str(), taken["status"].as_str()),
        (Some("AVAILABLE"), Some("RESERVED"))
    );

    // That hold's release job is lost (as when Redis lost it): only the
    // sweep, every second here, can release it.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let scheduled = holdfast_queue::storage_config(&world.queue.name).scheduled_jobs_set();
    let mut redis = redis::Client::open(holdfast_testkit::redis_url())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    redis::cmd("DEL")
        .arg(scheduled)
        .query_async::<()>(&mut redis)
        .await
        .expect("DEL");
    let worker = world.worker("* * * * * *").await;
    let swept = client.change(Duration::from_secs(4)).await;
    assert_eq!(swept["property"]["id"], acme.plot(0, 1).to_string());
    assert_eq!(swept["status"], "AVAILABLE");
    client.nothing_for(Duration::from_millis(500)).await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_of_another_workspace_is_not_found() {
    let world = World::new().await;
    let acme = world.workspace("Acme", 1).await;
    let rival = world.workspace("Rival", 1).await;
    let server = world.server().await;
    let mut client = Client::subscribe(
        &server,
        Protocol::TransportWs,
        &acme.agent,
        Some(rival.project(0)),
    )
    .await;
    match client.next(WITHIN).await {
        Some(crate::helpers::Seen::Errors(errors)) => {
            assert_eq!(errors[0]["extensions"]["code"], "NOT_FOUND", "{errors}");
        }
        other => panic!("expected NOT_FOUND, got {other:?}"),
    }
}
