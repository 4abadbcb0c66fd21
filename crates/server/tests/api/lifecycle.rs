//! A hold from start to end: reserve, extend (twice, then refused), release,
//! convert; the history newest first, and availablePlots after each step.

use holdfast_domain::entities::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app};

async fn counts(app: &TestApp, token: &str, project: &str) -> Value {
    let data = app
        .ok(
            token,
            "query($p: ID!) { project(id: $p) { totalPlots availablePlots reservedPlots soldPlots } }",
            json!({ "p": project }),
        )
        .await;
    json!([
        data["project"]["totalPlots"],
        data["project"]["availablePlots"],
        data["project"]["reservedPlots"],
        data["project"]["soldPlots"]
    ])
}

#[tokio::test]
async fn a_hold_is_reserved_extended_twice_released_and_converted_with_history_newest_first() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let manager = app.member(&ws, Role::Manager, "Max").await;
    let alice = app.member(&ws, Role::SalesAgent, "Alice").await;
    let bob = app.member(&ws, Role::SalesAgent, "Bob").await;
    let (project, plots) = app
        .project(&manager.token, "Riverside", &["A-1", "A-2", "A-3"])
        .await;
    assert_eq!(
        counts(&app, &alice.token, &project).await,
        json!([3, 3, 0, 0])
    );

    // Alice reserves A-1.
    let body = app.reserve(&alice.token, &plots[0]).await;
    let first = body["data"]["reserveProperty"].clone();
    assert_eq!(first["status"], json!("ACTIVE"), "{body}");
    let first_id = first["id"].as_str().expect("id").to_owned();
    assert_eq!(
        counts(&app, &alice.token, &project).await,
        json!([3, 2, 1, 0])
    );
    let data = app
        .ok(
            &alice.token,
            "query($p: ID!) { me { activeReservations { id } } property(id: $p) { status reservedBy { id } reservedUntil activeReservation { id } } }",
            json!({ "p": plots[0] }),
        )
        .await;
    assert_eq!(
        data["me"]["activeReservations"],
        json!([{ "id": first_id }])
    );
    assert_eq!(data["property"]["status"], json!("RESERVED"));
    assert_eq!(data["property"]["reservedBy"]["id"], json!(alice.id));
    assert_eq!(data["property"]["activeReservation"]["id"], json!(first_id));

    // The manager extends it twice; the third time is refused.
    let extend = "mutation($r: ID!) { extendReservation(reservationId: $r) { extensionCount expiresAt status } }";
    let mut expires = first["expiresAt"].as_str().expect("expiresAt").to_owned();
    for n in 1..=2 {
        let data = app
            .ok(&manager.token, extend, json!({ "r": first_id }))
            .await;
        assert_eq!(data["extendReservation"]["extensionCount"], json!(n));
        let next = data["extendReservation"]["expiresAt"]
            .as_str()
            .expect("expiresAt")
            .to_owned();
        assert!(
            chrono::DateTime::parse_from_rfc3339(&next).expect("time")
                > chrono::DateTime::parse_from_rfc3339(&expires).expect("time"),
            "extending moves expiresAt later"
        );
        expires = next;
    }
    let body = app
        .gql(Some(&manager.token), extend, json!({ "r": first_id }))
        .await;
    assert_error(&body, "EXTENSION_LIMIT_REACHED", 409);
    assert_eq!(
        counts(&app, &alice.token, &project).await,
        json!([3, 2, 1, 0])
    );

    // Alice releases it.
    let data = app
        .ok(
            &alice.token,
            "mutation($r: ID!) { releaseReservation(reservationId: $r) { status endedAt endedBy { id } property { status } } }",
            json!({ "r": first_id }),
        )
        .await;
    assert_eq!(data["releaseReservation"]["status"], json!("RELEASED"));
    assert_eq!(data["releaseReservation"]["endedBy"]["id"], json!(alice.id));
    assert!(data["releaseReservation"]["endedAt"].is_string());
    assert_eq!(
        data["releaseReservation"]["property"]["status"],
        json!("AVAILABLE")
    );
    assert_eq!(
        counts(&app, &alice.token, &project).await,
        json!([3, 3, 0, 0])
    );

    // Bob reserves the same plot and converts it: a sale.
    let body = app.reserve(&bob.token, &plots[0]).await;
    let second_id = body["data"]["reserveProperty"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        counts(&app, &alice.token, &project).await,
        json!([3, 2, 1, 0])
    );
    let data = app
        .ok(
            &bob.token,
            "mutation($r: ID!) { convertReservation(reservationId: $r) { status property { status } } }",
            json!({ "r": second_id }),
        )
        .await;
    assert_eq!(data["convertReservation"]["status"], json!("CONVERTED"));
    assert_eq!(
        data["convertReservation"]["property"]["status"],
        json!("SOLD")
    );
    assert_eq!(
        counts(&app, &alice.token, &project).await,
        json!([3, 2, 0, 1])
    );

    // A sold plot cannot be reserved.
    let body = app.reserve(&alice.token, &plots[0]).await;
    assert_error(&body, "PROPERTY_UNAVAILABLE", 409);
    assert_eq!(
        body["errors"][0]["extensions"]["propertyStatus"],
        json!("SOLD")
    );

    // History, newest first, on the property and in the top-level list.
    let data = app
        .ok(
            &manager.token,
            "query($p: ID!) { property(id: $p) { reservations { nodes { id status agent { id } } } } \
             reservations(propertyId: $p) { nodes { id } } }",
            json!({ "p": plots[0] }),
        )
        .await;
    assert_eq!(
        data["property"]["reservations"]["nodes"],
        json!([
            { "id": second_id, "status": "CONVERTED", "agent": { "id": bob.id } },
            { "id": first_id, "status": "RELEASED", "agent": { "id": alice.id } },
        ])
    );
    assert_eq!(
        data["reservations"]["nodes"],
        json!([{ "id": second_id }, { "id": first_id }])
    );

    // The same history a page at a time, through the cursor.
    let page = "query($p: ID!, $after: String) { reservations(propertyId: $p, first: 1, after: $after) { \
                edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage endCursor } } }";
    let data = app.ok(&manager.token, page, json!({ "p": plots[0] })).await;
    assert_eq!(
        data["reservations"]["edges"][0]["node"]["id"],
        json!(second_id)
    );
    assert_eq!(data["reservations"]["pageInfo"]["hasNextPage"], json!(true));
    let cursor = data["reservations"]["pageInfo"]["endCursor"].clone();
    let data = app
        .ok(
            &manager.token,
            page,
            json!({ "p": plots[0], "after": cursor }),
        )
        .await;
    assert_eq!(
        data["reservations"]["edges"][0]["node"]["id"],
        json!(first_id)
    );
    assert_eq!(
        data["reservations"]["pageInfo"]["hasNextPage"],
        json!(false)
    );
    assert_eq!(
        data["reservations"]["pageInfo"]["hasPreviousPage"],
        json!(true)
    );

    app.assert_consistent().await;
}

#[tokio::test]
async fn properties_page_through_in_code_order_with_opaque_cursors() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let codes: Vec<String> = (1..=25).map(|i| format!("P-{i:03}")).collect();
    let codes_ref: Vec<&str> = codes.iter().map(String::as_str).collect();
    let (project, _) = app.project(&ws.admin.token, "Riverside", &codes_ref).await;
    let query = "query($p: ID!, $after: String) { project(id: $p) { properties(after: $after) { \
                 nodes { code } pageInfo { hasNextPage endCursor } } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = app
            .ok(
                &ws.admin.token,
                query,
                json!({ "p": project, "after": after }),
            )
            .await;
        let page = &data["project"]["properties"];
        for node in page["nodes"].as_array().expect("nodes") {
            seen.push(node["code"].as_str().expect("code").to_owned());
        }
        if page["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, codes, "20 by default, then the remaining 5, in order");

    let body = app
        .gql(
            Some(&ws.admin.token),
            "{ properties(after: \"bm90LWEtY3Vyc29y\") { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", 400);
}

#[tokio::test]
async fn a_lapsed_hold_reads_expired_and_another_agent_takes_the_plot_over() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.rules.reservation_ttl = std::time::Duration::from_secs(1).into()
    })
    .await;
    let ws = app.bootstrap("Acme").await;
    let alice = app.member(&ws, Role::SalesAgent, "Alice").await;
    let bob = app.member(&ws, Role::SalesAgent, "Bob").await;
    let (project, plots) = app.project(&ws.admin.token, "Riverside", &["A-1"]).await;
    let body = app.reserve(&alice.token, &plots[0]).await;
    let first = body["data"]["reserveProperty"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;

    // No worker runs here: reads alone say the hold is over.
    let data = app
        .ok(
            &alice.token,
            "query($r: ID!, $p: ID!) { reservation(id: $r) { status endedAt } property(id: $p) { status reservedBy { id } } \
             me { activeReservations { id } } }",
            json!({ "r": first, "p": plots[0] }),
        )
        .await;
    assert_eq!(data["reservation"]["status"], json!("EXPIRED"));
    assert_eq!(data["property"]["status"], json!("AVAILABLE"));
    assert_eq!(data["property"]["reservedBy"], json!(null));
    assert_eq!(data["me"]["activeReservations"], json!([]));
    assert_eq!(
        counts(&app, &alice.token, &project).await,
        json!([1, 1, 0, 0])
    );
    let body = app
        .gql(
            Some(&alice.token),
            "mutation($r: ID!) { releaseReservation(reservationId: $r) { id } }",
            json!({ "r": first }),
        )
        .await;
    assert_error(&body, "RESERVATION_NOT_ACTIVE", 409);

    let body = app.reserve(&bob.token, &plots[0]).await;
    assert_eq!(
        body["data"]["reserveProperty"]["status"],
        json!("ACTIVE"),
        "{body}"
    );
    let data = app
        .ok(
            &alice.token,
            "query($r: ID!) { reservation(id: $r) { status endedAt endedBy { id } } }",
            json!({ "r": first }),
        )
        .await;
    assert_eq!(data["reservation"]["status"], json!("EXPIRED"));
    assert!(
        data["reservation"]["endedAt"].is_string(),
        "the takeover recorded the end"
    );
    assert_eq!(data["reservation"]["endedBy"], json!(null));
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("holdfast_releases_total{source=\"takeover\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("holdfast_release_lag_seconds_bucket{source=\"takeover\""),
        "{metrics}"
    );
    app.assert_consistent().await;
}
