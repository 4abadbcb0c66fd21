//! Two agents can never hold one plot, whatever the timing of their clicks.

use futures::future::join_all;
use holdfast_domain::entities::Role;

use crate::helpers::{error_of, spawn_app};

#[tokio::test]
async fn fifty_simultaneous_reservations_of_one_plot_by_ten_agents_give_exactly_one_hold() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let mut agents = Vec::new();
    for i in 0..10 {
        agents.push(
            app.member(&ws, Role::SalesAgent, &format!("Agent{i}"))
                .await,
        );
    }
    let (_, plots) = app.project(&ws.admin.token, "Riverside", &["A-1"]).await;

    let attempts = (0..50).map(|i| app.reserve(&agents[i % agents.len()].token, &plots[0]));
    let bodies = join_all(attempts).await;

    let successes = bodies
        .iter()
        .filter(|b| b["data"]["reserveProperty"]["status"] == "ACTIVE")
        .count();
    let unavailable = bodies
        .iter()
        .filter(|b| {
            b.get("errors").is_some() && error_of(b) == ("PROPERTY_UNAVAILABLE".to_owned(), 409)
        })
        .count();
    assert_eq!(successes, 1, "exactly one hold: {bodies:?}");
    assert_eq!(
        unavailable, 49,
        "every other attempt is PROPERTY_UNAVAILABLE: {bodies:?}"
    );
    app.assert_consistent().await;
}
