//! The worker's JSON logs: a release job's lines carry the job's span, with
//! its id and the ids of what it released.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{World, job};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_hold_logs_a_json_line_with_the_job_reservation_workspace_and_property_ids() {
    let w = World::new().await;
    let r = w.reserve_many(1, Duration::from_secs(1)).await.remove(0);
    w.schedule(&r).await;
    let worker = w.spawn_binary("off").await;

    let parse = |line: &str| -> Value {
        serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line is not one JSON object ({e}): {line}"))
    };
    let line = worker
        .logs
        .find(Duration::from_secs(10), |line| {
            parse(line)["message"] == "released an expired reservation"
        })
        .await
        .expect("the release is logged within 10 s");
    let line = parse(&line);

    assert_eq!(line["property.id"], r.property_id.to_string());
    let span = &line["span"];
    assert_eq!(span["name"], "release_job");
    assert_eq!(span["job.id"], job(&r).task_id());
    assert_eq!(span["reservation.id"], r.id.to_string());
    assert_eq!(span["workspace.id"], r.workspace_id.to_string());
    assert!(line["spans"].as_array().is_some_and(|s| !s.is_empty()));
}
