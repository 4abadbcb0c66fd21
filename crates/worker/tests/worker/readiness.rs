//! One `/readyz` for both binaries: the server and the worker answer it in
//! the same shape (the same keys, the same check names, the same words),
//! ready or not, so that one probe configuration fits either.

use std::net::SocketAddr;
use std::time::Duration;

use holdfast_runtime::Deployment;
use holdfast_server::{Application, Config as ServerConfig};
use holdfast_testkit::Running;
use holdfast_worker::Config;
use serde_json::{Value, json};

use crate::helpers::{TcpProxy, World, eventually, get};

/// The body with every error message replaced by a placeholder: the
/// messages differ by nature (a refused connection, a timeout), the shape
/// must not.
fn shape(body: &Value) -> Value {
    match body {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let v = if k == "error" { json!("...") } else { shape(v) };
                (k.clone(), v)
            })
            .collect(),
        other => other.clone(),
    }
}

async fn readyz(addr: SocketAddr) -> (u16, Value) {
    let (status, body) = get(addr, "/readyz").await;
    let body = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_and_the_worker_answer_readyz_in_the_same_shape_ready_or_not() {
    let w = World::new().await;
    let redis = TcpProxy::redis().await;
    let worker = w
        .spawn_worker_with(Config::load(w.args_with_redis("off", &redis.url())).expect("config"))
        .await;
    let server = Application::build(&ServerConfig {
        deployment: Deployment {
            database_url: w.db_url.clone(),
            redis_url: redis.url(),
            queue: w.queue_keys.name.clone(),
            ..Deployment::default()
        },
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        db_max_connections: 4,
        ..ServerConfig::default()
    })
    .await
    .expect("server");
    let server_addr = server.addr();
    let server = Running::spawn(|stop| server.run_until(stop));

    let (server_status, server_body) = readyz(server_addr).await;
    let (worker_status, worker_body) = readyz(worker.addr).await;
    assert_eq!((server_status, worker_status), (200, 200));
    assert_eq!(
        server_body,
        json!({
            "status": "ready",
            "down": [],
            "checks": { "postgres": { "status": "up" }, "redis": { "status": "up" } },
        })
    );
    assert_eq!(worker_body, server_body);

    redis.cut();
    eventually(Duration::from_secs(10), "both see Redis down", || async {
        readyz(server_addr).await.0 == 503 && readyz(worker.addr).await.0 == 503
    })
    .await;
    let (_, server_body) = readyz(server_addr).await;
    let (_, worker_body) = readyz(worker.addr).await;
    assert_eq!(
        shape(&server_body),
        json!({
            "status": "unavailable",
            "down": ["redis"],
            "checks": {
                "postgres": { "status": "up" },
                "redis": { "status": "down", "error": "..." },
            },
        }),
        "{server_body}"
    );
    assert_eq!(shape(&worker_body), shape(&server_body), "{worker_body}");

    redis.restore();
    server.stop(Duration::from_secs(10)).await;
    worker.stop().await;
}
