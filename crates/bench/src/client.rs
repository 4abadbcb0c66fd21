//! One agent's GraphQL-over-HTTP client: its own token and its own connection
//! pool, like one browser tab of the web app, and the few requests the
//! scenarios send.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::outcome::{Op, Outcome};

/// The mutation the web app sends to reserve, asking for what it shows.
const RESERVE: &str =
    "mutation Reserve($id: ID!) { reserveProperty(propertyId: $id) { id status expiresAt } }";
const RELEASE: &str =
    "mutation Release($id: ID!) { releaseReservation(reservationId: $id) { id status endedAt } }";
const CONVERT: &str =
    "mutation Convert($id: ID!) { convertReservation(reservationId: $id) { id status endedAt } }";
/// The project page: its counters and the first page of available plots.
const PROJECT_PAGE: &str = "query Project($id: ID!) { project(id: $id) { id name totalPlots \
     availablePlots reservedPlots soldPlots properties(status: AVAILABLE, first: 20) { nodes { id code status } } } }";
const COUNTERS: &str = "query Counters($id: ID!) { project(id: $id) { totalPlots availablePlots \
     reservedPlots soldPlots } }";
/// A page of the project's plots, whatever their status, as the board lists them.
const PLOTS_PAGE: &str = "query Plots($id: ID!, $first: Int!) { project(id: $id) { \
     properties(first: $first) { nodes { id code status reservedUntil } pageInfo { hasNextPage endCursor } } } }";
const ME: &str = "query Me { me { id } }";
/// A place in a plot's line (or the plot at once, when it is free and nobody waits).
const JOIN: &str = "mutation Join($id: ID!) { joinQueue(propertyId: $id) { id status position \
     reservation { id } } }";
const LEAVE: &str = "mutation Leave($id: ID!) { leaveQueue(entryId: $id) { id status } }";
/// A plot's line as the board shows it: who waits, in order.
const LINE: &str = "query Line($id: ID!) { property(id: $id) { id queueLength \
     queue(first: 100) { nodes { id position agent { id } } } } }";
/// The caller's own places in line that became holds, newest first, with
/// their holds as they are now.
const PROMOTED_ENTRIES: &str = "query Promoted($first: Int!) { queueEntries(status: PROMOTED, \
     first: $first) { nodes { id reservation { id status } } } }";

/// How long one request may take before it counts as a transport failure:
/// every wait in the load generator is bounded.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The answer to one request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub op: Op,
    pub outcome: Outcome,
    pub latency: Duration,
    /// `data` on success.
    pub data: Value,
    /// The error code, or a short description of a transport failure.
    pub error: Option<String>,
}

/// An agent of the bench workspace, as a client program sees it.
#[derive(Debug, Clone)]
pub struct AgentClient {
    pub id: String,
    token: String,
    url: String,
    http: reqwest::Client,
}

impl AgentClient {
    /// A client with a connection pool of its own, for `graphql_url`.
    pub fn new(id: &str, token: &str, graphql_url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(4)
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            id: id.to_owned(),
            token: token.to_owned(),
            url: graphql_url.to_owned(),
            http,
        })
    }

    async fn send(&self, op: Op, query: &str, variables: Value) -> Answer {
        let body = json!({ "query": query, "variables": variables });
        let started = Instant::now();
        let result = async {
            let response = self
                .http
                .post(&self.url)
                .bearer_auth(&self.token)
                .json(&body)
                .send()
                .await?;
            let status = response.status();
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, bytes))
        }
        .await;
        let latency = started.elapsed();
        let (status, bytes) = match result {
            Ok(ok) => ok,
            Err(e) => return failed(op, latency, describe(&e)),
        };
        if !status.is_success() {
            return failed(op, latency, format!("HTTP {status}"));
        }
        let Ok(mut body) = serde_json::from_slice::<Value>(&bytes) else {
            return failed(op, latency, "a body that is not JSON".to_owned());
        };
        match body["errors"].get(0) {
            Some(err) => {
                let code = err["extensions"]["code"]
                    .as_str()
                    .unwrap_or("<no code>")
                    .to_owned();
                Answer {
                    op,
                    outcome: Outcome::from_code(&code),
                    latency,
                    data: Value::Null,
                    error: Some(code),
                }
            }
            None => Answer {
                op,
                outcome: Outcome::Ok,
                latency,
                data: body["data"].take(),
                error: None,
            },
        }
    }

    /// Reserves a plot; on success `data.reserveProperty.id` is the reservation.
    pub async fn reserve(&self, property_id: &str) -> Answer {
        self.send(Op::Reserve, RESERVE, json!({ "id": property_id }))
            .await
    }

    pub async fn release(&self, reservation_id: &str) -> Answer {
        self.send(Op::Release, RELEASE, json!({ "id": reservation_id }))
            .await
    }

    pub async fn convert(&self, reservation_id: &str) -> Answer {
        self.send(Op::Convert, CONVERT, json!({ "id": reservation_id }))
            .await
    }

    /// The project page the web app shows between clicks.
    pub async fn project_page(&self, project_id: &str) -> Answer {
        self.send(Op::Read, PROJECT_PAGE, json!({ "id": project_id }))
            .await
    }

    /// Only the project's counters.
    pub async fn counters(&self, project_id: &str) -> Answer {
        self.send(Op::Read, COUNTERS, json!({ "id": project_id }))
            .await
    }

    /// The project's four counters, as `reads` measures them.
    pub async fn counts(&self, project_id: &str) -> Answer {
        self.send(Op::Counts, COUNTERS, json!({ "id": project_id }))
            .await
    }

    /// The first `first` plots of the project, as `reads` measures them.
    pub async fn plots_page(&self, project_id: &str, first: u32) -> Answer {
        self.send(
            Op::Page,
            PLOTS_PAGE,
            json!({ "id": project_id, "first": first }),
        )
        .await
    }

    /// Joins the plot's line; on success `data.joinQueue` is the entry (WAITING
    /// with its position, or PROMOTED with its reservation).
    pub async fn join_queue(&self, property_id: &str) -> Answer {
        self.send(Op::Join, JOIN, json!({ "id": property_id }))
            .await
    }

    /// Leaves a place in line. An entry that stopped waiting meanwhile
    /// (promoted, skipped, closed) is refused with BAD_USER_INPUT, which a
    /// client reads as "too late", as it reads RESERVATION_NOT_ACTIVE for a hold.
    pub async fn leave_queue(&self, entry_id: &str) -> Answer {
        let mut answer = self.send(Op::Leave, LEAVE, json!({ "id": entry_id })).await;
        if answer.error.as_deref() == Some("BAD_USER_INPUT") {
            answer.outcome = Outcome::NotActive;
        }
        answer
    }

    /// The plot's line: `data.property.queue.nodes`, first in line first.
    pub async fn line(&self, property_id: &str) -> Answer {
        self.send(Op::Line, LINE, json!({ "id": property_id }))
            .await
    }

    /// The caller's newest `first` entries that became holds.
    pub async fn promoted_entries(&self, first: u32) -> Answer {
        self.send(Op::Line, PROMOTED_ENTRIES, json!({ "first": first }))
            .await
    }

    /// A cheap authenticated request: opens the connection before a race, so
    /// that the race is about the reservation, not about TCP handshakes.
    pub async fn warm_up(&self) -> Answer {
        self.send(Op::Read, ME, json!({})).await
    }
}

/// The reservation id of a successful reserve.
pub fn reservation_id(answer: &Answer) -> Option<String> {
    answer.data["reserveProperty"]["id"]
        .as_str()
        .map(str::to_owned)
}

fn failed(op: Op, latency: Duration, why: String) -> Answer {
    Answer {
        op,
        outcome: Outcome::Transport,
        latency,
        data: Value::Null,
        error: Some(why),
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".to_owned()
    } else if e.is_connect() {
        "connection refused or reset".to_owned()
    } else {
        format!("transport: {e}")
    }
}
