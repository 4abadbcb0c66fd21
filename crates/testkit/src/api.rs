//! A client of a running server's HTTP side (GraphQL, probes, metrics), or
//! of the worker's probes: what every suite sends to them.

use std::fmt::Display;
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::RequestBuilder;
use serde_json::{Value, json};

#[derive(Clone)]
pub struct Api {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
}

impl Api {
    /// A client whose requests give up after 20 s: a test never hangs on a
    /// server that stopped answering.
    pub fn new(addr: SocketAddr) -> Api {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("an HTTP client");
        Api { addr, client }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Where subscriptions are served.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql/ws", self.addr)
    }

    /// GET: (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self.client.get(self.url(path)).send().await.expect("GET");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.1
    }

    fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> RequestBuilder {
        let request = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// POSTs a GraphQL request: the JSON body whatever the status, or the
    /// transport error.
    pub async fn post(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> reqwest::Result<Value> {
        self.graphql(token, query, variables)
            .send()
            .await?
            .json()
            .await
    }

    /// POSTs a GraphQL request that must be answered 200 with a JSON body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let request = self.graphql(token, query, variables);
        let response = request.send().await.expect("send the request");
        assert_eq!(response.status(), 200, "GraphQL answers 200");
        response.json().await.expect("a JSON body")
    }

    /// `data` of a request that must succeed.
    pub async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = self.gql(Some(token), query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// `reserveProperty` on `plot`: the whole answer.
    pub async fn reserve_plot(&self, token: &str, plot: impl Display) -> reqwest::Result<Value> {
        self.post(
            Some(token),
            "mutation($id: ID!) { reserveProperty(propertyId: $id) { id status expiresAt extensionCount } }",
            json!({ "id": plot.to_string() }),
        )
        .await
    }
}
