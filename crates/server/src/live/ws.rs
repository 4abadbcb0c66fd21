//! `GET /graphql/ws`: GraphQL subscriptions over WebSocket, in both
//! `graphql-transport-ws` and the older `graphql-ws`, authenticated by the
//! `connection_init` payload (`{"Authorization": "Bearer ..."}`).
//!
//! async-graphql speaks the protocols; this loop adds what it leaves out:
//! the close codes below, a deadline for `connection_init`, a bound on how
//! long one send may block, and dropping a connection whose subscriber fell
//! behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_graphql::Data;
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols, WsMessage};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use holdfast_domain::DomainError;
use sea_orm::DbErr;
use tracing::Instrument;

use crate::auth;
use crate::config::HumanDuration;
use crate::error::ApiError;
use crate::graphql::limited::Limited;
use crate::graphql::snapshot::Reads;
use crate::graphql::subscription::{FeedEnded, FeedEnds};
use crate::graphql::{Loaders, RequestAuth};
use crate::metrics;
use crate::state::{AppState, MAX_BODY_BYTES};

/// Close codes (documented in README, "Live updates and operations").
pub mod close {
    /// `connection_init` without a valid token (missing, malformed, expired,
    /// forged, or its user is gone or deactivated).
    pub const UNAUTHORIZED: u16 = 4401;
    /// The token is good but the workspace is suspended.
    pub const FORBIDDEN: u16 = 4403;
    /// The token could not be checked (PostgreSQL unavailable): try again.
    pub const UNAVAILABLE: u16 = 4500;
    /// No `connection_init` within [`super::INIT_TIMEOUT`].
    pub const INIT_TIMEOUT: u16 = 4408;
    /// A subscriber fell more than the buffer's worth of changes behind.
    pub const TOO_SLOW: u16 = 4413;
    /// The client or the server ended the connection normally.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down: reconnect (to another replica).
    pub const GOING_AWAY: u16 = 1001;
}

/// Per-connection socket buffers.
const READ_BUFFER_BYTES: usize = 4 * 1024;
const WRITE_BUFFER_BYTES: usize = 8 * 1024;

/// How long a client has to send `connection_init`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one message may wait for the client's socket: a client that reads
/// nothing for this long is disconnected without ceremony.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn graphql_ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    // The client names the protocol it speaks; without one we cannot answer.
    let protocol = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|offered| {
            offered
                .split(',')
                .find_map(|p| p.trim().parse::<WebSocketProtocols>().ok())
        });
    let Some(protocol) = protocol else {
        return (
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Protocol must offer graphql-transport-ws or graphql-ws",
        )
            .into_response();
    };
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let span = tracing::info_span!(
        "graphql_ws",
        request.id = %request_id,
        user.id = tracing::field::Empty,
        workspace.id = tracing::field::Empty,
    );
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // The defaults (128 KiB buffers, 64 MiB messages) are for bulk
        // transfers; a subscriber sends a few small messages and receives
        // small ones, and a server holds hundreds of them.
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(MAX_BODY_BYTES)
        .on_upgrade(move |socket| serve(state, protocol, socket).instrument(span))
}

/// Why `connection_init` was refused, to pick the close code.
type Refusal = Arc<std::sync::Mutex<Option<(u16, String)>>>;

async fn serve(state: AppState, protocol: WebSocketProtocols, socket: WebSocket) {
    let _connected = metrics::WsConnection::open();
    let _tracked = state.ws.track();
    let going_away = state.ws.going_away();
    let mut going_away = std::pin::pin!(going_away);
    let (mut sink, incoming) = socket.split();
    let input = incoming
        .take_while(|msg| std::future::ready(msg.is_ok()))
        .filter_map(|msg| {
            std::future::ready(match msg {
                Ok(msg @ (Message::Text(_) | Message::Binary(_))) => Some(msg.into_data()),
                _ => None,
            })
        });

    let feed_ends = FeedEnds::default();
    let mut ended = feed_ends.watch();
    let refusal: Refusal = Arc::default();
    let initialised = Arc::new(AtomicBool::new(false));
    let on_init = {
        let state = state.clone();
        let refusal = Arc::clone(&refusal);
        let initialised = Arc::clone(&initialised);
        let feed_ends = feed_ends.clone();
        let span = tracing::Span::current();
        move |payload: serde_json::Value| async move {
            match authenticate(&state, &payload).await {
                Ok(session) => {
                    span.record("user.id", tracing::field::display(session.user.id));
                    span.record(
                        "workspace.id",
                        tracing::field::display(session.workspace.id),
                    );
                    let mut data = Data::default();
                    // One connection's operations read each on their own.
                    let reads = Reads::Each(state.db.clone());
                    data.insert(Loaders::for_request(reads.clone(), session.workspace.id));
                    data.insert(reads);
                    data.insert(RequestAuth::loaded(state.db.clone(), session));
                    data.insert(feed_ends);
                    initialised.store(true, Ordering::Release);
                    Ok(data)
                }
                Err(err) => {
                    let code = match err {
                        ApiError::Unauthenticated(_) => close::UNAUTHORIZED,
                        ApiError::Forbidden(_) => close::FORBIDDEN,
                        // Not the client's fault (the database is away).
                        _ => close::UNAVAILABLE,
                    };
                    let gql: async_graphql::Error = err.into();
                    tracing::info!(reason = %gql.message, "live updates: connection_init refused");
                    if let Ok(mut r) = refusal.lock() {
                        *r = Some((code, gql.message.clone()));
                    }
                    Err(gql)
                }
            }
        }
    };
    let schema = Limited::new(state.schema.clone(), Arc::clone(&state.documents));
    let gql =
        async_graphql::http::WebSocket::new(schema, input, protocol).on_connection_init(on_init);
    let mut gql = std::pin::pin!(gql);
    let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
    let mut init_deadline = std::pin::pin!(init_deadline);

    let refused = |refusal: &Refusal| refusal.lock().ok().and_then(|r| r.clone());
    let close_with = loop {
        tokio::select! {
            biased;
            Ok(()) = ended.changed() => {
                let end = *ended.borrow();
                match end {
                    // A slow subscriber's connection is what is slow.
                    Some(FeedEnded::FellBehind) => {
                        break Some((close::TOO_SLOW, "subscriber too slow".to_owned()));
                    }
                    None => {}
                }
            }
            () = &mut going_away => {
                break Some((close::GOING_AWAY, "the server is shutting down".to_owned()));
            }
            () = &mut init_deadline, if !initialised.load(Ordering::Acquire) => {
                break Some((close::INIT_TIMEOUT, "connection initialisation timeout".to_owned()));
            }
            msg = gql.next() => match msg {
                Some(WsMessage::Text(text)) => {
                    match tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Text(text.into()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break None,
                        Err(_) => {
                            metrics::subscriber_dropped("stalled");
                            tracing::warn!(timeout = ?SEND_TIMEOUT, "live updates: the client read nothing for too long; disconnected");
                            break None;
                        }
                    }
                }
                Some(WsMessage::Close(code, reason)) => {
                    // async-graphql refuses a connection_init with 1002; the
                    // refusal says which code it deserves.
                    break Some(refused(&refusal).unwrap_or((code, reason)));
                }
                None => {
                    // The older protocol refuses with a connection_error
                    // message, then ends: close with the refusal's code.
                    break Some(refused(&refusal).unwrap_or((close::NORMAL, String::new())));
                }
            },
        }
    };
    if let Some((code, reason)) = close_with {
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        // A client that reads nothing never gets it; don't wait for ever.
        let _ = tokio::time::timeout(SEND_TIMEOUT, async {
            sink.send(frame).await?;
            sink.close().await
        })
        .await;
    }
}

/// The session a `connection_init` payload's token names.
async fn authenticate(
    state: &AppState,
    payload: &serde_json::Value,
) -> Result<crate::auth::Session, ApiError> {
    // Clients differ in the header name's case.
    let header = payload.as_object().and_then(|o| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.as_str().unwrap_or("\u{0}"))
    });
    let token = auth::bearer(header)?;
    // Bounded like a request over HTTP: on a silent link the client gets a
    // close it can retry (4500), not a socket that never answers.
    let bound = state.request_timeout;
    tokio::time::timeout(bound, auth::authenticate(&state.db, &state.tokens, token))
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::Domain(DomainError::Unavailable(DbErr::Custom(
                format!(
                    "no answer within the request timeout ({})",
                    HumanDuration(bound)
                ),
            ))))
        })
}
