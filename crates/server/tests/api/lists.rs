//! Lists cost a fixed number of queries, however long they are: every link
//! of a listed item is loaded in one batch for the whole page.

use holdfast_domain::entities::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// The server's count of SQL statements so far (its /metrics).
async fn statements(app: &TestApp) -> u64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|l| l.starts_with("holdfast_db_statements_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Statements one request costs.
async fn cost(app: &TestApp, token: &str, query: &str, variables: Value) -> u64 {
    let before = statements(app).await;
    let data = app.ok(token, query, variables).await;
    assert!(!data.is_null());
    statements(app).await - before
}

#[tokio::test]
async fn a_page_of_fifty_plots_with_their_links_costs_as_many_queries_as_a_page_of_five() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let codes: Vec<String> = (1..=60).map(|i| format!("A-{i:03}")).collect();
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    let (_, plots) = app.project(&ws.admin.token, "Riverside", &codes).await;
    let mut agents = Vec::new();
    for name in ["Alice", "Bob", "Carol"] {
        agents.push(app.member(&ws, Role::SalesAgent, name).await);
    }
    // Holds spread over the whole list, by several agents.
    for (i, plot) in plots.iter().enumerate().step_by(4) {
        let body = app.reserve(&agents[i % agents.len()].token, plot).await;
        assert!(body.get("errors").is_none(), "{body}");
    }

    let query = "query($first: Int) { properties(first: $first) { nodes { code status \
                 project { name availablePlots } reservedBy { name activeReservations { id } } \
                 activeReservation { id agent { name } property { code } } } } }";
    let five = cost(&app, &ws.admin.token, query, json!({ "first": 5 })).await;
    let fifty = cost(&app, &ws.admin.token, query, json!({ "first": 50 })).await;
    assert!(five >= 5, "statements are counted: {five}");
    assert_eq!(five, fifty, "the same statements for 5 and for 50 plots");
    assert!(
        fifty <= 12,
        "a handful of batched statements, not one per plot: {fifty}"
    );
}
