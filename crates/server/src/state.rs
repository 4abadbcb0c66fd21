//! What every request handler shares: the schema, the pool, the signing keys,
//! the open subscription connections and the document cache; and the largest
//! body any of them accepts.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;

use crate::auth::Tokens;
use crate::graphql::HoldfastSchema;
use crate::graphql::documents::ParsedQueries;
use crate::live::connections::Connections;

/// The largest request body accepted: 1 MiB, far above any real query
/// (a 1,000-code `addProperties` is about 20 KiB); larger is 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub schema: HoldfastSchema,
    pub db: DatabaseConnection,
    pub tokens: Tokens,
    /// Open subscription connections, closed on shutdown.
    pub ws: Connections,
    /// Parsed documents of the queries clients keep sending.
    pub documents: Arc<ParsedQueries>,
    /// `HOLDFAST_REQUEST_TIMEOUT`: the bound of every request over HTTP, and
    /// of a subscription connection's sign-in.
    pub request_timeout: Duration,
}
