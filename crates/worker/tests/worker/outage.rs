//! Redis or PostgreSQL going away (or going silent) and coming back: the
//! worker reports it, keeps running, and resumes the release jobs by itself.

use std::time::Duration;

use holdfast_domain::entities::{EndSource, ReservationStatus};
use holdfast_worker::Config;
use holdfast_worker::release::JOB_TIMEOUT;

use crate::helpers::{TcpProxy, World, eventually, get, lag, sample};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_outage_the_worker_resumes_the_release_jobs_by_itself() {
    let w = World::new().await;
    let proxy = TcpProxy::redis().await;
    let url = format!("redis://{}", proxy.addr);
    let config = Config::load(w.args_with_redis("off", &url)).expect("config");
    let worker = w.spawn_worker_with(config).await;
    let before = w.reserve_many(1, Duration::from_secs(1)).await.remove(0);
    w.schedule(&before).await;
    w.wait_all_ended(&[before.id], Duration::from_secs(10))
        .await;

    proxy.cut();
    let (status, body) = get(worker.addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("\"down\":[\"redis\"]") && body.contains("\"postgres\":{\"status\":\"up\"}"),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_meets_a_database_outage_is_retried_until_the_database_is_back() {
    let w = World::new().await;
    let proxy = TcpProxy::postgres().await;
    let name = w
        .db_url
        .rsplit('/')
        .next()
        .expect("database name")
        .to_owned();
    let mut args = w.args("off");
    let at = args
        .iter()
        .position(|a| a == "--database-url")
        .expect("flag")
        + 1;
    args[at] = format!("postgres://postgres@{}/{name}", proxy.addr);
    let worker = w
        .spawn_worker_with(Config::load(args).expect("config"))
        .await;
    let r = w.reserve_many(1, Duration::from_secs(1)).await.remove(0);
    w.schedule(&r).await;

    proxy.cut();
    eventually(
        Duration::from_secs(10),
        "the job failed and was rescheduled",
        || async {
            sample(
                &worker.metrics().await,
                "holdfast_release_jobs_total{outcome=\"retry\"}",
            ) >= 1.0
        },
    )
    .await;
    let (status, body) = get(worker.addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"down\":[\"postgres\"]"), "{body}");
    assert_eq!(w.stored(r.id).await.status, ReservationStatus::Active);

    proxy.restore();
    let ended = w
        .wait_all_ended(&[r.id], Duration::from_secs(20))
        .await
        .remove(0);

    println!(
        "release lag (s) of a job that met a database outage: {}",
        lag(&ended)
    );
    assert_eq!(
        ended.end_source,
        Some(EndSource::Job),
        "released by the retried job"
    );
    worker.stop().await;
    w.audit_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_on_a_silent_link_to_postgres_gives_up_within_its_bound_and_runs_again_after() {
    let w = World::new().await;
    let link = TcpProxy::postgres().await;
    let name = w
        .db_url
        .rsplit('/')
        .next()
        .expect("database name")
        .to_owned();
    let mut args = w.args("off");
    let at = args
        .iter()
        .position(|a| a == "--database-url")
        .expect("flag")
        + 1;
    args[at] = format!("postgres://postgres@{}/{name}", link.addr);
    let worker = w
        .spawn_worker_with(Config::load(args).expect("config"))
        .await;
    // A pooled connection, so that the job meets the silent link mid-way,
    // not while connecting (the pool's own bound).
    let (status, body) = get(worker.addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    let r = w.reserve_many(1, Duration::from_secs(1)).await.remove(0);
    w.schedule(&r).await;

    link.stall();
    let stalled = std::time::Instant::now();
    eventually(
        JOB_TIMEOUT + Duration::from_secs(5),
        "the job gave up and was rescheduled",
        || async {
            sample(
                &worker.metrics().await,
                "holdfast_release_jobs_total{outcome=\"retry\"}",
            ) >= 1.0
        },
    )
    .await;
    println!(
        "the job gave up {:?} after the stall began",
        stalled.elapsed()
    );
    assert_eq!(w.stored(r.id).await.status, ReservationStatus::Active);

    link.resume();
    let ended = w
        .wait_all_ended(&[r.id], Duration::from_secs(20))
        .await
        .remove(0);
    println!(
        "release lag (s) of a job that met a silent link for {:?}: {}",
        stalled.elapsed(),
        lag(&ended)
    );
    assert_eq!(ended.end_source, Some(EndSource::Job));
    worker.stop().await;
    w.audit_clean().await;
}
