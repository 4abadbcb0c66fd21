//! A GraphQL-over-WebSocket client of `/graphql/ws` that speaks both
//! protocols the server does: for tests of subscriptions.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use holdfast_domain::ProjectId;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Api;

/// Every status change of the workspace's properties (of project `$p`, or
/// all).
pub const SUBSCRIPTION: &str = "subscription($p: ID) { propertyChanged(projectId: $p) { \
     property { id code status reservedUntil } previousStatus status at } }";

/// Which GraphQL-over-WebSocket protocol a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws` (the graphql-ws library's protocol).
    TransportWs,
    /// `graphql-ws` (the older subscriptions-transport-ws protocol).
    LegacyWs,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::TransportWs => "graphql-transport-ws",
            Protocol::LegacyWs => "graphql-ws",
        }
    }
}

/// What a subscriber saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// A payload with data: the change.
    Change(Value),
    /// A payload with errors.
    Errors(Value),
    /// The subscription completed.
    Complete,
    /// The connection closed with this code and reason.
    Closed(u16, String),
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A GraphQL-over-WebSocket client.
pub struct Client {
    pub socket: Socket,
    pub protocol: Protocol,
}

impl Client {
    /// Opens the socket (no `connection_init` yet).
    pub async fn open(server: &Api, protocol: Protocol) -> Client {
        Self::open_url(&server.ws_url(), protocol).await
    }

    pub async fn open_url(url: &str, protocol: Protocol) -> Client {
        Self::open_with_receive_buffer(url, protocol, None).await
    }

    /// Opens the socket with the kernel's receive buffer for it set to
    /// `bytes` (a client that stops reading then blocks the server sooner).
    pub async fn open_with_receive_buffer(
        url: &str,
        protocol: Protocol,
        bytes: Option<u32>,
    ) -> Client {
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            protocol.name().parse().expect("header"),
        );
        let authority = request.uri().authority().expect("host").to_string();
        let addr: SocketAddr = authority.parse().expect("an address");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        if let Some(bytes) = bytes {
            socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
        }
        let (socket, response) = tokio::time::timeout(Duration::from_secs(10), async {
            let stream = socket.connect(addr).await.expect("connect");
            tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await
        })
        .await
        .expect("connect within 10 s")
        .expect("WebSocket handshake");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(protocol.name()),
            "the server speaks the protocol asked for"
        );
        Client { socket, protocol }
    }

    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .expect("send");
    }

    /// Sends `connection_init` with this payload; returns the first answer.
    pub async fn init(&mut self, payload: Value) -> Seen {
        self.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        loop {
            match self.next_raw(Duration::from_secs(10)).await {
                Some(Raw::Text(v)) => match v["type"].as_str() {
                    Some("connection_ack") => return Seen::Complete,
                    Some("connection_error") => return Seen::Errors(v["payload"].clone()),
                    Some("ka") => continue,
                    _ => panic!("unexpected answer to connection_init: {v}"),
                },
                Some(Raw::Closed(code, reason)) => return Seen::Closed(code, reason),
                None => panic!("no answer to connection_init within 10 s"),
            }
        }
    }

    /// A connected client (authenticated with `token`) subscribed to the
    /// changes of `project` (or all).
    pub async fn subscribe(
        server: &Api,
        protocol: Protocol,
        token: &str,
        project: Option<ProjectId>,
    ) -> Client {
        Self::subscribe_with(server, protocol, token, SUBSCRIPTION, project).await
    }

    pub async fn subscribe_with(
        server: &Api,
        protocol: Protocol,
        token: &str,
        query: &str,
        project: Option<ProjectId>,
    ) -> Client {
        let mut client = Client::open(server, protocol).await;
        let ack = client
            .init(json!({ "Authorization": format!("Bearer {token}") }))
            .await;
        assert_eq!(ack, Seen::Complete, "connection_init is acknowledged");
        client.start(query, project).await;
        client
    }

    pub async fn start(&mut self, query: &str, project: Option<ProjectId>) {
        self.start_with(query, json!({ "p": project.map(|p| p.to_string()) }))
            .await;
    }

    /// Starts the subscription `query` with these variables.
    pub async fn start_with(&mut self, query: &str, variables: Value) {
        let kind = match self.protocol {
            Protocol::TransportWs => "subscribe",
            Protocol::LegacyWs => "start",
        };
        self.send(json!({
            "id": "1",
            "type": kind,
            "payload": { "query": query, "variables": variables },
        }))
        .await;
    }

    async fn next_raw(&mut self, within: Duration) -> Option<Raw> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()?;
            match msg {
                Some(Ok(Message::Text(text))) => {
                    let v: Value = serde_json::from_str(&text).expect("JSON message");
                    if v["type"] == "ping" {
                        self.send(json!({ "type": "pong" })).await;
                        continue;
                    }
                    return Some(Raw::Text(v));
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((u16::from(CloseCode::Status), String::new()));
                    return Some(Raw::Closed(code, reason));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Some(Raw::Closed(0, format!("socket error: {e}"))),
                None => return Some(Raw::Closed(0, "connection closed".into())),
            }
        }
    }

    /// The next thing seen within `within`, or None.
    pub async fn next(&mut self, within: Duration) -> Option<Seen> {
        loop {
            match self.next_raw(within).await? {
                Raw::Closed(code, reason) => return Some(Seen::Closed(code, reason)),
                Raw::Text(v) => match v["type"].as_str() {
                    Some("next" | "data") => {
                        let payload = &v["payload"];
                        if payload.get("errors").is_some() {
                            return Some(Seen::Errors(payload["errors"].clone()));
                        }
                        // The subscription's one field (`propertyChanged`, ...).
                        let data = payload["data"].as_object().and_then(|d| d.values().next());
                        return Some(Seen::Change(data.cloned().unwrap_or(Value::Null)));
                    }
                    Some("error") => return Some(Seen::Errors(v["payload"].clone())),
                    Some("complete") => return Some(Seen::Complete),
                    Some("ka") => continue,
                    _ => panic!("unexpected message: {v}"),
                },
            }
        }
    }

    /// The next change; fails on anything else or nothing within `within`.
    pub async fn change(&mut self, within: Duration) -> Value {
        match self.next(within).await {
            Some(Seen::Change(change)) => change,
            other => panic!("expected a change within {within:?}, got {other:?}"),
        }
    }

    /// Asserts nothing arrives for `quiet`.
    pub async fn nothing_for(&mut self, quiet: Duration) {
        if let Some(seen) = self.next(quiet).await {
            panic!("expected nothing, got {seen:?}");
        }
    }
}

enum Raw {
    Text(Value),
    Closed(u16, String),
}
