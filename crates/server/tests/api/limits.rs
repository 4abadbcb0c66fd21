//! The limits checked before a query runs (`graphql/limits.rs`): page
//! lengths with the variables applied, depth (where introspection's `ofType`
//! does not count), and the cost of introspection. A request over one is
//! refused whole, `data: null`, and nothing of it runs.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app, spawn_app_with};

/// graphql-js' `getIntrospectionQuery()` with every option on.
const STANDARD_INTROSPECTION: &str = include_str!("../fixtures/introspection.graphql");

/// A refusal before execution: no data at all, one coded error, no path.
fn assert_refused(body: &Value, message_part: &str) {
    assert_error(body, "BAD_USER_INPUT", 400);
    assert_eq!(body["data"], Value::Null, "nothing ran: {body}");
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{body}");
    assert!(errors[0].get("path").is_none(), "a request error: {body}");
    let message = errors[0]["message"].as_str().expect("message");
    assert!(message.contains(message_part), "{message}");
}

async fn project_count(app: &TestApp, token: &str) -> usize {
    let data = app
        .ok(
            token,
            "{ projects(first: 100) { nodes { id } } }",
            json!({}),
        )
        .await;
    data["projects"]["nodes"].as_array().expect("nodes").len()
}

#[tokio::test]
async fn a_page_over_the_limit_inside_a_list_refuses_the_request_instead_of_dropping_a_non_null_field()
 {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let token = ws.admin.token.as_str();
    app.project(token, "Riverside", &["A-1"]).await;

    // Before: `{"data":{"projects":{"nodes":[{"name":"Riverside"}]}}, ...}`,
    // a project without its non-null `properties`.
    let body = app
        .gql(
            Some(token),
            "{ projects(first:1){ nodes{ name properties(first:1000){nodes{id}} } } }",
            json!({}),
        )
        .await;
    assert_refused(&body, "first is 1000; a page holds at most 100 items");
    assert_eq!(
        body["errors"][0]["locations"],
        json!([{ "line": 1, "column": 51 }]),
        "the error points at the argument: {body}"
    );

    // Within the limit, the same query answers in full.
    let data = app
        .ok(
            token,
            "{ projects(first:1){ nodes{ name properties(first:100){nodes{id}} } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["projects"]["nodes"][0]["properties"]["nodes"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn page_lengths_from_variables_defaults_and_fragments_are_checked_before_anything_runs() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let token = ws.admin.token.as_str();
    app.project(token, "Riverside", &["A-1"]).await;

    let nested = "query($n: Int) { projects(first: 1) { nodes { ...plots } } } \
                  fragment plots on Project { properties(first: $n) { nodes { id } } }";
    for (n, refusal) in [
        (json!(101), "first is 101"),
        (json!(-1), "first must not be negative"),
    ] {
        let body = app.gql(Some(token), nested, json!({ "n": n })).await;
        assert_refused(&body, refusal);
    }
    let data = app.ok(token, nested, json!({ "n": 100 })).await;
    assert!(data["projects"]["nodes"][0]["properties"].is_object());
    let data = app.ok(token, nested, json!({})).await;
    assert!(data["projects"]["nodes"][0]["properties"].is_object());

    let defaulted = "query($n: Int = 500) { properties(first: $n) { nodes { id } } }";
    let body = app.gql(Some(token), defaulted, json!({})).await;
    assert_refused(&body, "first is 500");

    // A mutation whose answer would ask for too long a page does not run.
    let before = project_count(&app, token).await;
    let body = app
        .gql(
            Some(token),
            "mutation { createProject(name: \"Hillside\") { id properties(first: 1000) { nodes { id } } } }",
            json!({}),
        )
        .await;
    assert_refused(&body, "first is 1000");
    assert_eq!(project_count(&app, token).await, before, "no project made");
}

#[tokio::test]
async fn graphql_js_standard_introspection_query_is_answered_in_full() {
    let app = spawn_app().await;
    // No token: tools load the schema first.
    let body = app.gql(None, STANDARD_INTROSPECTION, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    let types = body["data"]["__schema"]["types"].as_array().expect("types");
    let connection = types
        .iter()
        .find(|t| t["name"] == "PropertyConnection")
        .expect("PropertyConnection");
    let nodes = connection["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["name"] == "nodes")
        .expect("nodes");
    // [Property!]!, unwrapped through ofType to the named type.
    let ty = &nodes["type"];
    assert_eq!(ty["kind"], "NON_NULL");
    assert_eq!(ty["ofType"]["kind"], "LIST");
    assert_eq!(ty["ofType"]["ofType"]["kind"], "NON_NULL");
    assert_eq!(ty["ofType"]["ofType"]["ofType"]["name"], "Property");
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
    assert_eq!(
        body["data"]["__schema"]["subscriptionType"]["name"],
        "Subscription"
    );
}

#[tokio::test]
async fn a_deeply_nested_query_is_still_refused_through_fragments_too() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let token = ws.admin.token.as_str();
    // 13 levels of fields, the last five in fragments.
    let deep = "{ me { activeReservations { property { project { properties { nodes { activeReservation { \
                agent { ...a } } } } } } } } } \
                fragment a on User { activeReservations { ...b } } \
                fragment b on Reservation { property { reservations { nodes { id } } } }";
    let body = app.gql(Some(token), deep, json!({})).await;
    assert_refused(&body, "nested too deep");
    // Twelve is fine.
    let twelve = "{ me { activeReservations { property { project { properties { nodes { activeReservation { \
                  agent { activeReservations { property { project { name } } } } } } } } } } } }";
    app.ok(token, twelve, json!({})).await;
}

/// `__schema { types { fields { type { ... name ... } } } }`, with `levels`
/// of `fields { type {`.
fn types_fields_nested(levels: usize) -> String {
    format!(
        "{{ __schema {{ types {{ {} name {} }} }} }}",
        "fields { type { ".repeat(levels),
        "} } ".repeat(levels)
    )
}

#[tokio::test]
async fn costly_introspection_is_refused_however_it_is_nested() {
    let app = spawn_app().await;
    // Ten levels: too deep (ofType aside, every field counts).
    let body = app.gql(None, &types_fields_nested(10), json!({})).await;
    assert_refused(&body, "nested too deep");
    // Three levels fit the depth, but every type's fields' types' fields'
    // types' fields cost too much.
    let body = app.gql(None, &types_fields_nested(3), json!({})).await;
    assert_refused(&body, "Introspection is too costly");
    // Two levels are answered.
    let body = app.gql(None, &types_fields_nested(2), json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");

    // The standard query twice in one request, under two aliases.
    let (operation, fragments) = STANDARD_INTROSPECTION
        .split_once("fragment FullType")
        .expect("the standard query's fragments");
    let schema = operation
        .split_once("__schema")
        .and_then(|(_, rest)| rest.trim_end().strip_suffix('}'))
        .expect("the standard query's __schema");
    let twice = format!(
        "query {{ a: __schema {schema} b: __schema {schema} }} fragment FullType{fragments}"
    );
    let body = app.gql(None, &twice, json!({})).await;
    assert_refused(&body, "Introspection is too costly");
}

#[tokio::test]
async fn of_type_chains_past_the_hard_ceiling_are_refused() {
    let app = spawn_app().await;
    let chain = |levels: usize| {
        format!(
            "{{ __type(name: \"Query\") {{ fields {{ type {{ {} name }} {} }} }} }}",
            "ofType { ".repeat(levels),
            "} ".repeat(levels)
        )
    };
    // 22 deep by async-graphql's count, where ofType counts too.
    let body = app.gql(None, &chain(18), json!({})).await;
    assert!(
        body.get("errors").is_none(),
        "18 levels of ofType are fine: {body}"
    );
    // 26 deep: over the ceiling of 24.
    let body = app.gql(None, &chain(22), json!({})).await;
    assert_refused(&body, "nested too deep");
}

#[tokio::test]
async fn introspection_stays_off_in_production() {
    let app = spawn_app_with(|c| {
        c.deployment.environment = holdfast_server::config::Environment::Production
    })
    .await;
    for query in [
        STANDARD_INTROSPECTION,
        "{ __type(name: \"Query\") { fields { name } } }",
    ] {
        let body = app.gql(None, query, json!({})).await;
        let data = &body["data"];
        assert!(
            data["__schema"].is_null() && data["__type"].is_null(),
            "{body}"
        );
    }
}
