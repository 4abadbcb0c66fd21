//! One answer, one moment: while holds begin and end as fast as an agent can
//! click, every answer's parts agree with each other (a property's status,
//! end, holder and active reservation; a project's counts and its listed
//! plots), because a query reads in one snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use holdfast_domain::entities::Role;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

/// Answers each of the two readers reads while the plots change.
const ANSWERS_EACH: usize = 1_000;

const READ: &str = "query($p: ID!, $proj: ID!) {
  property(id: $p) { status reservedUntil reservedBy { id } activeReservation { id status } }
  project(id: $proj) {
    totalPlots availablePlots reservedPlots
    properties(first: 10) { nodes { status reservedUntil activeReservation { id } } }
  }
}";

/// What disagrees within one answer, if anything.
fn disagreement(data: &Value) -> Option<String> {
    let held = |p: &Value| {
        let parts = [
            p["status"] == "RESERVED",
            !p["reservedUntil"].is_null(),
            !p["activeReservation"].is_null(),
        ];
        parts.iter().all(|x| *x) || parts.iter().all(|x| !*x)
    };
    let property = &data["property"];
    let holder_agrees = property["reservedBy"].is_null() == property["activeReservation"].is_null();
    if !held(property) || !holder_agrees {
        return Some(format!("property: {property}"));
    }
    let project = &data["project"];
    let nodes = project["properties"]["nodes"].as_array()?;
    if let Some(node) = nodes.iter().find(|n| !held(n)) {
        return Some(format!("listed plot: {node}"));
    }
    let count = |status: &str| nodes.iter().filter(|n| n["status"] == status).count() as u64;
    let counts = (
        project["availablePlots"].as_u64()?,
        project["reservedPlots"].as_u64()?,
        project["totalPlots"].as_u64()?,
    );
    if counts != (count("AVAILABLE"), count("RESERVED"), nodes.len() as u64) {
        return Some(format!("counts {counts:?} vs listed plots: {project}"));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_holds_begin_and_end_every_answer_agrees_with_itself() {
    let app = Arc::new(spawn_app().await);
    let ws = app.bootstrap("Acme").await;
    let agent = app.member(&ws, Role::SalesAgent, "Asha").await;
    let (project, plots) = app
        .project(&ws.admin.token, "Riverside", &["A-1", "A-2", "A-3"])
        .await;

    // The agent reserves and releases the plots, over and over, until the
    // readers have read their answers (at most 30 s).
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (app, done, plots, token) = (
            Arc::clone(&app),
            Arc::clone(&done),
            plots.clone(),
            agent.token.clone(),
        );
        tokio::spawn(async move {
            let started = Instant::now();
            let mut changes = 0;
            while !done.load(Ordering::Acquire) && started.elapsed() < Duration::from_secs(30) {
                for plot in &plots {
                    let body = app.reserve(&token, plot).await;
                    let id = body["data"]["reserveProperty"]["id"]
                        .as_str()
                        .unwrap_or_else(|| panic!("reserved: {body}"))
                        .to_owned();
                    app.ok(
                        &token,
                        "mutation($id: ID!) { releaseReservation(reservationId: $id) { id } }",
                        json!({ "id": id }),
                    )
                    .await;
                    changes += 2;
                }
            }
            changes
        })
    };

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (app, token) = (Arc::clone(&app), agent.token.clone());
            let variables = json!({ "p": plots[0], "proj": project });
            tokio::spawn(async move {
                let (mut answers, mut mixed) = (0, Vec::new());
                while answers < ANSWERS_EACH {
                    let data = app.ok(&token, READ, variables.clone()).await;
                    answers += 1;
                    if let Some(what) = disagreement(&data) {
                        mixed.push(what);
                    }
                }
                (answers, mixed)
            })
        })
        .collect();

    let mut answers = 0;
    for reader in readers {
        let (read, mixed) = reader.await.expect("reader");
        assert!(
            mixed.is_empty(),
            "{} of {read} answers mixed two moments, e.g. {}",
            mixed.len(),
            mixed[0]
        );
        answers += read;
    }
    done.store(true, Ordering::Release);
    let changes = writer.await.expect("writer");
    assert!(
        changes >= 100,
        "too few changes while reading to tell: {changes}"
    );
    eprintln!("{answers} answers read while {changes} changes were made: none mixed");
    app.assert_consistent().await;
}
