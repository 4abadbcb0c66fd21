//! 500 subscribers on one server (the real binary) each receive every one of
//! a burst of 1,000 changes, and the server's memory stays bounded.

use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::helpers::{BinaryServer, Client, Protocol, World};

const SUBSCRIBERS: usize = 500;
const CHANGES: usize = 1000;
const QUERY: &str = "subscription { propertyChanged { property { id } status } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_subscribers_each_receive_every_change_of_a_burst_of_a_thousand() {
    let world = World::new().await;
    let acme = world.workspace("Acme", CHANGES).await;
    let binary = BinaryServer::start(&world, &[]).await;
    let watched = binary.server();
    // Changes are made through another server, in this process.
    let maker = world
        .server_with(|c| c.rules.max_active_per_agent = 0)
        .await;
    let (rss_idle, _) = binary.memory_kib();

    let started = Instant::now();
    let clients: Vec<Client> = futures::stream::iter(0..SUBSCRIBERS)
        .map(|_| Client::subscribe_with(&watched, Protocol::TransportWs, &acme.agent, QUERY, None))
        .buffer_unordered(32)
        .collect()
        .await;
    watched.wait_subscribers(SUBSCRIBERS).await;
    let (rss_subscribed, _) = binary.memory_kib();
    let connect_time = started.elapsed();

    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                let mut ids = std::collections::HashSet::with_capacity(CHANGES);
                while ids.len() < CHANGES {
                    let change = client.change(Duration::from_secs(30)).await;
                    assert_eq!(change["status"], "RESERVED");
                    ids.insert(change["property"]["id"].as_str().expect("id").to_owned());
                }
                ids.len()
            })
        })
        .collect();

    let burst = Instant::now();
    let plots: Vec<_> = (0..CHANGES).map(|i| acme.plot(0, i)).collect();
    futures::stream::iter(plots)
        .for_each_concurrent(8, |plot| {
            let (maker, token) = (&maker, &acme.agent);
            async move {
                maker.reserve(token, plot).await;
            }
        })
        .await;
    let burst_time = burst.elapsed();

    let mut complete = 0;
    for reader in readers {
        let got = tokio::time::timeout(Duration::from_secs(90), reader)
            .await
            .expect("every subscriber gets the burst within 90 s")
            .expect("reader");
        assert_eq!(got, CHANGES);
        complete += 1;
    }
    let delivered = burst.elapsed();
    let (rss_after, rss_peak) = binary.memory_kib();
    let metrics = watched.metrics().await;
    eprintln!(
        "live load: {SUBSCRIBERS} subscribers x {CHANGES} changes: connected in {connect_time:?}, \
         burst made in {burst_time:?}, all delivered after {delivered:?}; server RSS idle {} MiB, \
         subscribed {} MiB, after {} MiB, peak {} MiB",
        rss_idle / 1024,
        rss_subscribed / 1024,
        rss_after / 1024,
        rss_peak / 1024
    );
    assert_eq!(complete, SUBSCRIBERS);
    assert_eq!(
        crate::helpers::sample(
            &metrics,
            "holdfast_subscribers_dropped_total{reason=\"lagged\"}"
        ),
        0.0,
        "nobody was dropped"
    );
    // Bounded: measured at about 34 MiB at its peak (17 MiB idle), well
    // under the 100 MB the design gives the server, with half a million
    // messages sent.
    assert!(rss_peak < 64 * 1024, "peak RSS {rss_peak} KiB");
}
