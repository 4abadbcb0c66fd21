//! Hostile input: wrong content types, 10 MB bodies, queries nested thousands
//! deep or thousands wide, aliases multiplying a costly field, huge `first`,
//! invalid UTF-8, SQL and script fragments, a token claiming another
//! workspace, and a bounded fuzz run over random requests. Each gets a clear
//! error with a code, and a normal query right after answers quickly.
//!
//! Covered elsewhere: malformed JSON and a body over 1 MiB (`http.rs`), the
//! depth and complexity limits (`http.rs`), `first` over 100 (`errors.rs`),
//! forged, `alg: none` and expired tokens (`auth.rs`), ids of another
//! workspace (`errors.rs`).

use std::time::{Duration, Instant};

use holdfast_domain::entities::Role;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestApp, assert_error, error_of, spawn_app};

/// What a refused request must look like: a 4xx, and a GraphQL-shaped body
/// whose first error carries a code.
async fn post_raw(
    app: &TestApp,
    token: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (u16, String) {
    let mut request = app.client.post(app.url("/graphql")).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

/// `extensions.code` of a raw body's first error.
fn code_in(body: &str) -> String {
    let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON ({e}): {body}"));
    error_of(&body).0
}

/// A normal query right after answers, and quickly: the server stayed up.
async fn still_fast(app: &TestApp, token: &str) {
    let asked = Instant::now();
    let data = app.ok(token, "{ me { id } }", json!({})).await;
    assert!(data["me"]["id"].is_string(), "{data}");
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "a normal query took {:?}",
        asked.elapsed()
    );
}

#[tokio::test]
async fn bodies_that_are_not_a_json_graphql_request_are_bad_user_input_whatever_the_content_type() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let token = ws.admin.token.as_str();
    let cases: &[(&str, &[u8])] = &[
        (
            "application/x-www-form-urlencoded",
            b"query=%7B+me+%7B+id+%7D+%7D",
        ),
        (
            "multipart/form-data; boundary=X",
            b"--X\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\n{ me { id } }\r\n--X--\r\n",
        ),
        ("text/xml", b"<query>{ me { id } }</query>"),
        ("application/graphql", b"{ me { id } }"),
        ("application/json", b""),
        ("application/json", b"null"),
        ("application/json", b"42"),
        ("application/json", b"\"{ me { id } }\""),
        // A batch: one request per POST.
        ("application/json", b"[{\"query\": \"{ me { id } }\"}]"),
        ("application/json", b"{\"query\": 42}"),
        ("application/json", b"{\"query\": \"{ me { id } }\", \"variables\": \"x\"}"),
    ];
    for (content_type, body) in cases {
        let (status, text) = post_raw(&app, Some(token), Some(content_type), body.to_vec()).await;
        assert_eq!(
            status,
            400,
            "{content_type} {:?}: {text}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(code_in(&text), "BAD_USER_INPUT", "{text}");
        still_fast(&app, token).await;
    }
    // The content type is not what is trusted: a JSON GraphQL request is
    // answered whatever the header says (a bearer token is needed anyway,
    // which no cross-site form can send).
    for content_type in [None, Some("text/plain")] {
        let (status, text) = post_raw(
            &app,
            Some(token),
            content_type,
            json!({ "query": "{ me { id } }" }).to_string(),
        )
        .await;
        assert_eq!(status, 200, "{content_type:?}: {text}");
        assert!(text.contains(&ws.admin.id), "{text}");
    }
}

#[tokio::test]
async fn ten_megabyte_bodies_are_refused_with_413_quickly_even_when_chunked() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let ten_mb = 10 * 1024 * 1024;

    let body = format!(
        "{{\"query\": \"{{ me {{ id }} }}\", \"variables\": {{\"pad\": \"{}\"}}}}",
        "x".repeat(ten_mb)
    );
    let asked = Instant::now();
    let (status, text) =
        post_raw(&app, Some(&ws.admin.token), Some("application/json"), body).await;
    assert_eq!(status, 413, "{text}");
    assert_eq!(code_in(&text), "BAD_USER_INPUT", "{text}");
    assert!(text.contains("length limit"), "says why: {text}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    still_fast(&app, &ws.admin.token).await;

    // Chunked, with no Content-Length to refuse up front: the limit holds
    // while reading.
    let mut conn = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        app.addr, ws.admin.token
    );
    conn.write_all(head.as_bytes()).await.expect("headers");
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "x".repeat(64 * 1024));
    // The server may answer and close before all 10 MB are sent.
    for _ in 0..(ten_mb / (64 * 1024)) {
        if conn.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("BAD_USER_INPUT"), "{answer}");
    still_fast(&app, &ws.admin.token).await;
}

#[tokio::test]
async fn queries_and_variables_nested_thousands_deep_are_refused_without_harm() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let token = ws.admin.token.as_str();
    let deep = 10_000;

    // Selection sets, list values and object values thousands deep: the
    // parser's recursion limit refuses them (no stack overflow).
    let selections = format!("{}{}", "{ me ".repeat(deep), "}".repeat(deep));
    let lists = format!(
        "{{ properties(first: {}1{}) {{ nodes {{ id }} }} }}",
        "[".repeat(deep),
        "]".repeat(deep)
    );
    let objects = format!(
        "{{ properties(first: {}1{}) {{ nodes {{ id }} }} }}",
        "{a: ".repeat(deep),
        "}".repeat(deep)
    );
    for query in [selections, lists, objects] {
        let asked = Instant::now();
        let body = app.gql(Some(token), &query, json!({})).await;
        assert_error(&body, "BAD_USER_INPUT", 400);
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{:?}",
            asked.elapsed()
        );
        still_fast(&app, token).await;
    }

    // JSON nested thousands deep in the variables: the JSON parser's
    // recursion limit refuses it.
    let variables = format!(
        "{{\"query\": \"{{ me {{ id }} }}\", \"variables\": {{\"v\": {}1{}}}}}",
        "[".repeat(deep),
        "]".repeat(deep)
    );
    let (status, text) = post_raw(&app, Some(token), Some("application/json"), variables).await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(code_in(&text), "BAD_USER_INPUT");
    still_fast(&app, token).await;
}

#[tokio::test]
async fn very_wide_queries_and_aliases_multiplying_a_costly_field_are_refused_or_merged_quickly() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let token = ws.admin.token.as_str();
    app.project(token, "Riverside", &["A-1", "A-2"]).await;

    let aliases_of_a_costly_field: String = (0..500)
        .map(|i| format!("p{i}: projects(first: 100) {{ nodes {{ id name properties(first: 100) {{ nodes {{ id code }} }} }} }} "))
        .collect();
    let wide_aliases: String = (0..10_000).map(|i| format!("a{i}: me {{ id }} ")).collect();
    let wide_fields = "__typename ".repeat(50_000);
    let many_fragments: String = (0..2_000)
        .map(|i| format!("fragment f{i} on User {{ id }} "))
        .collect::<String>();
    let spreads: String = (0..2_000).map(|i| format!("...f{i} ")).collect();
    for query in [
        format!("{{ {aliases_of_a_costly_field} }}"),
        format!("{{ {wide_aliases} }}"),
    ] {
        let asked = Instant::now();
        let body = app.gql(Some(token), &query, json!({})).await;
        let took = asked.elapsed();
        assert_error(&body, "BAD_USER_INPUT", 400);
        assert!(took < Duration::from_secs(2), "refused in {took:?}");
        still_fast(&app, token).await;
    }

    // One field repeated 50,000 times, or spread from 2,000 fragments, is
    // merged into one and costs one: answered, and quickly (checking that
    // the fields merge does not blow up).
    for (query, expected) in [
        (
            format!("{{ {wide_fields} }}"),
            json!({ "__typename": "Query" }),
        ),
        (
            format!("{{ me {{ {spreads} }} }} {many_fragments}"),
            json!({ "me": { "id": ws.admin.id } }),
        ),
    ] {
        let asked = Instant::now();
        let data = app.ok(token, &query, json!({})).await;
        let took = asked.elapsed();
        assert_eq!(data, expected);
        assert!(took < Duration::from_secs(2), "answered in {took:?}");
        println!("a wide query merged into one field answered in {took:?}");
        still_fast(&app, token).await;
    }
}

#[tokio::test]
async fn a_huge_or_mistyped_first_is_bad_user_input() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let token = ws.admin.token.as_str();
    for first in [
        "2147483647",
        "2147483648",
        "9223372036854775807",
        "99999999999999999999999999999",
        "-2147483648",
        "1e308",
        "\"100\"",
        "null",
    ] {
        let body = app
            .gql(
                Some(token),
                &format!("{{ properties(first: {first}) {{ nodes {{ id }} }} }}"),
                json!({}),
            )
            .await;
        if first == "null" {
            // No `first`: the default page, not an error.
            assert!(body.get("errors").is_none(), "{body}");
            continue;
        }
        assert_error(&body, "BAD_USER_INPUT", 400);
    }
    for first in [
        json!(2_147_483_647_i64),
        json!(1e20),
        json!(u64::MAX),
        json!("100"),
    ] {
        let body = app
            .gql(
                Some(token),
                "query($n: Int) { reservations(first: $n) { nodes { id } } }",
                json!({ "n": first }),
            )
            .await;
        assert_error(&body, "BAD_USER_INPUT", 400);
    }
    still_fast(&app, token).await;
}

#[tokio::test]
async fn invalid_utf8_in_the_body_is_bad_user_input() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let token = ws.admin.token.as_str();
    let bodies: &[&[u8]] = &[
        b"{\"query\": \"{ me { id } }\xff\xfe\"}",
        // An overlong encoding of '/', and a lone surrogate's bytes.
        b"{\"query\": \"{ me { id } }\xc0\xaf\"}",
        b"{\"query\": \"{ me { id } }\xed\xa0\x80\"}",
        b"\xff\xfe{\x00\"\x00q\x00",
        // A lone surrogate written as an escape.
        b"{\"query\": \"{ me { id } }\\ud800\"}",
    ];
    for body in bodies {
        let (status, text) =
            post_raw(&app, Some(token), Some("application/json"), body.to_vec()).await;
        assert_eq!(status, 400, "{:?}: {text}", String::from_utf8_lossy(body));
        assert_eq!(code_in(&text), "BAD_USER_INPUT", "{text}");
        still_fast(&app, token).await;
    }
}

#[tokio::test]
async fn sql_and_script_fragments_in_names_and_codes_are_stored_and_returned_verbatim() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let token = ws.admin.token.as_str();
    let name = "Robert'); DROP TABLE property; --";
    let codes = [
        "' OR '1'='1",
        "1; DELETE FROM reservation",
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "${7*7} {{7*7}} %s %n",
        "'; SELECT pg_sleep(10); --",
        "\\x00 \\' \\\" $$ $1",
        "プロット-😀",
    ];
    let (project, ids) = app.project(token, name, &codes).await;
    assert_eq!(ids.len(), codes.len());

    let data = app
        .ok(
            token,
            "query($p: ID!) { project(id: $p) { name totalPlots properties(first: 100) { nodes { code } } } }",
            json!({ "p": project }),
        )
        .await;
    assert_eq!(data["project"]["name"], json!(name));
    assert_eq!(data["project"]["totalPlots"], json!(codes.len()));
    let mut returned: Vec<String> = data["project"]["properties"]["nodes"]
        .as_array()
        .expect("plots")
        .iter()
        .map(|n| n["code"].as_str().expect("code").to_owned())
        .collect();
    returned.sort();
    let mut expected: Vec<String> = codes.iter().map(|c| (*c).to_owned()).collect();
    expected.sort();
    assert_eq!(returned, expected, "verbatim");

    // The same fragments inline in the query text, escaped as GraphQL strings.
    let inline = "mutation { createProject(name: \"x'); DROP TABLE reservation; -- <script>\") { id name } }";
    let data = app.ok(token, inline, json!({})).await;
    assert_eq!(
        data["createProject"]["name"],
        json!("x'); DROP TABLE reservation; -- <script>")
    );
    let agent = app
        .ok(
            token,
            "mutation { createUser(name: \"<script>alert('x')</script>\", email: \"o'brien@example.com\", role: SALES_AGENT) { token user { name email } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        agent["createUser"]["user"]["name"],
        json!("<script>alert('x')</script>")
    );
    assert_eq!(
        agent["createUser"]["user"]["email"],
        json!("o'brien@example.com")
    );

    // Nothing was executed: the tables are there, the plots reservable, and
    // the answer is JSON, which no browser renders as a page.
    let agent_token = agent["createUser"]["token"].as_str().expect("token");
    let body = app.reserve(agent_token, &ids[5]).await;
    assert_eq!(
        body["data"]["reserveProperty"]["status"],
        json!("ACTIVE"),
        "{body}"
    );
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": "{ me { name } }" }))
        .send()
        .await
        .expect("send");
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    app.assert_consistent().await;
    still_fast(&app, token).await;
}

#[tokio::test]
async fn nul_and_other_control_characters_in_names_and_codes_are_bad_user_input() {
    let app = spawn_app().await;
    let ws = app.bootstrap("Acme").await;
    let token = ws.admin.token.as_str();
    let (project, _) = app.project(token, "Riverside", &["A-1"]).await;
    for bad in [
        "a\u{0}b",
        "line\nbreak",
        "bell\u{7}",
        "esc\u{1b}[31m",
        "del\u{7f}",
    ] {
        let body = app
            .gql(
                Some(token),
                "mutation($n: String!) { createProject(name: $n) { id } }",
                json!({ "n": bad }),
            )
            .await;
        assert_error(&body, "BAD_USER_INPUT", 400);
        let body = app
            .gql(
                Some(token),
                "mutation($p: ID!, $c: [String!]!) { addProperties(projectId: $p, codes: $c) { id } }",
                json!({ "p": project, "c": [bad] }),
            )
            .await;
        assert_error(&body, "BAD_USER_INPUT", 400);
    }
    app.assert_consistent().await;
    still_fast(&app, token).await;
}

#[tokio::test]
async fn a_validly_signed_token_claiming_another_workspace_is_unauthenticated() {
    let app = spawn_app().await;
    let ours = app.bootstrap("Ours").await;
    let theirs = app.bootstrap("Theirs").await;
    let their_agent = app.member(&theirs, Role::SalesAgent, "Trudy").await;
    app.project(&theirs.admin.token, "Theirs", &["T-1"]).await;

    // Our admin's id with their workspace, signed with the server's own key.
    let user: holdfast_domain::UserId = ours.admin.id.parse().expect("id");
    let crossed = app.token_for(user, theirs.id);
    let body = app
        .gql(
            Some(&crossed),
            "{ me { id } projects { nodes { name } } }",
            json!({}),
        )
        .await;
    assert_error(&body, "UNAUTHENTICATED", 401);
    assert!(!body.to_string().contains("Theirs"), "{body}");
    // And their agent's token works only in theirs.
    let data = app.ok(&their_agent.token, "{ me { id } }", json!({})).await;
    assert_eq!(data["me"]["id"], json!(their_agent.id));
    still_fast(&app, &ours.admin.token).await;
}

/// Random requests of several shapes, for the fuzz run below.
fn hostile_bodies(project: String, plot: String) -> impl Strategy<Value = Vec<u8>> {
    let graphql_ish = "[{}()\\[\\]a-zA-Z0-9_:!$@\",.=\\-\\n #&|*]{0,300}";
    let json_leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,40}".prop_map(Value::from),
    ];
    let json_value = json_leaf.prop_recursive(4, 32, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
            prop::collection::hash_map("[a-z$]{0,6}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let text = "(\\PC|[\\x00-\\x1f\\x7f\\u{200b}\\u{feff}]){0,80}";
    prop_oneof![
        // Bytes of any kind.
        prop::collection::vec(any::<u8>(), 0..400),
        // A query string of GraphQL's own characters.
        graphql_ish.prop_map(|q| json!({ "query": q }).to_string().into_bytes()),
        // Real operations with random variables.
        (json_value.clone(), json_value.clone()).prop_map(|(a, b)| {
            json!({
                "query": "query($a: ID!, $b: Int) { property(id: $a) { code } properties(first: $b) { nodes { id } } }",
                "variables": { "a": a, "b": b },
            })
            .to_string()
            .into_bytes()
        }),
        // Random names and codes through the input validation.
        (text, prop::collection::vec(text, 0..6)).prop_map(move |(name, codes)| {
            json!({
                "query": "mutation($n: String!, $p: ID!, $c: [String!]!) { createProject(name: $n) { id } addProperties(projectId: $p, codes: $c) { id code } }",
                "variables": { "n": name, "p": project, "c": codes },
            })
            .to_string()
            .into_bytes()
        }),
        // Random ids where ids go.
        text.prop_map(move |id| {
            let id = if id.is_empty() { plot.clone() } else { id };
            json!({
                "query": "mutation($id: ID!) { reserveProperty(propertyId: $id) { id } }",
                "variables": { "id": id },
            })
            .to_string()
            .into_bytes()
        }),
        // Random operation names and extra keys.
        (json_value.clone(), "\\PC{0,20}").prop_map(|(extra, op)| {
            json!({ "query": "query A { me { id } } query B { me { name } }", "operationName": op, "extensions": extra })
                .to_string()
                .into_bytes()
        }),
    ]
}

const CODES: &[&str] = &[
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_USER_INPUT",
    "PROPERTY_UNAVAILABLE",
    "RESERVATION_NOT_ACTIVE",
    "RESERVATION_LIMIT_REACHED",
    "EXTENSION_LIMIT_REACHED",
    "BUSY",
    "SERVICE_UNAVAILABLE",
];

/// A bounded fuzz run (1,000 cases, a few seconds) over the request parser,
/// the GraphQL layer and the input validation: every answer is a 4xx or a
/// well-formed GraphQL response whose errors all carry a known code, never
/// INTERNAL, never a 5xx; the server never panics and still answers.
#[test]
fn random_requests_always_get_a_well_formed_answer_and_never_a_5xx() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (app, ws, project, plot) = runtime.block_on(async {
        let app = spawn_app().await;
        let ws = app.bootstrap("Acme").await;
        let (project, plots) = app.project(&ws.admin.token, "Fuzz", &["F-1"]).await;
        (app, ws, project, plots[0].clone())
    });
    // HOLDFAST_FUZZ_CASES runs it longer (by hand, or in a nightly job).
    let cases = std::env::var("HOLDFAST_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let started = Instant::now();
    runner
        .run(&hostile_bodies(project, plot), |body| {
            let (status, text) = runtime.block_on(post_raw(
                &app,
                Some(&ws.admin.token),
                Some("application/json"),
                body.clone(),
            ));
            let shown = String::from_utf8_lossy(&body);
            prop_assert!(status < 500, "{status} for {shown}: {text}");
            let answer: Value = serde_json::from_str(&text)
                .map_err(|e| TestCaseError::fail(format!("not JSON ({e}) for {shown}: {text}")))?;
            prop_assert!(
                answer.get("data").is_some() || answer.get("errors").is_some(),
                "not a GraphQL response for {shown}: {text}"
            );
            if status != 200 {
                prop_assert!(answer.get("errors").is_some(), "{text}");
            }
            for err in answer["errors"].as_array().into_iter().flatten() {
                let code = err["extensions"]["code"].as_str().unwrap_or("<none>");
                prop_assert!(CODES.contains(&code), "code {code} for {shown}: {text}");
            }
            Ok(())
        })
        .expect("every random request got a well-formed answer");
    println!("{cases} random requests in {:?}", started.elapsed());
    runtime.block_on(async {
        still_fast(&app, &ws.admin.token).await;
        app.assert_consistent().await;
    });
}
