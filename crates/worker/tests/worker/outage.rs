//! Redis going away and coming back: the worker reports it, keeps running,
//! and resumes the release jobs by itself.

use std::time::Duration;

use holdfast_domain::entities::{EndSource, ReservationStatus};
use holdfast_worker::Config;

use crate::helpers::{RedisProxy, World, get, lag};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_outage_the_worker_resumes_the_release_jobs_by_itself() {
    let w = World::new().await;
    let proxy = RedisProxy::start().await;
    let config = Config::load(w.args_with_redis("off", &proxy.url)).expect("config");
    let worker = w.spawn_worker_with(config).await;
    let before = w.reserve_many(1, Duration::from_secs(1)).await.remove(0);
    w.schedule(&before).await;
    w.wait_all_ended(&[before.id], Duration::from_secs(10))
        .await;

    proxy.cut();
    let (status, body) = get(worker.addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("\"redis\":{\"down\"") && body.contains("\"postgres\":\"ok\""),
        "{body}"
    );
    assert_eq!(
        get(worker.addr, "/healthz").await.0,
        200,
        "alive all the same"
    );
    // Scheduled (by a server that still reaches Redis) during the outage.
    let during = w.reserve_many(1, Duration::from_secs(1)).await.remove(0);
    w.schedule(&during).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        w.stored(during.id).await.status,
        ReservationStatus::Active,
        "the worker cannot see it"
    );

    proxy.restore();
    let ended = w
        .wait_all_ended(&[during.id], Duration::from_secs(15))
        .await
        .remove(0);

    println!(
        "release lag (s) of a job due during a Redis outage: {}",
        lag(&ended)
    );
    assert_eq!(ended.end_source, Some(EndSource::Job));
    let (status, body) = get(worker.addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    worker.stop().await;
    w.audit_clean().await;
}
