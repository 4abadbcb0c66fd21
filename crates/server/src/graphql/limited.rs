//! The schema behind `/graphql/ws`: every request checked against the limits
//! (`limits.rs`) before it runs, and every error given a code
//! (`ensure_coded`), as the HTTP handler does for its own.

use std::sync::Arc;

use async_graphql::{Data, Executor, Request, Response};
use futures::StreamExt;
use futures::stream::BoxStream;

use super::HoldfastSchema;
use super::documents::ParsedQueries;
use crate::error::ensure_coded;

/// The schema, with every request checked against the limits first: what
/// `/graphql/ws` runs (`POST /graphql` checks in its handler).
#[derive(Clone)]
pub struct Limited {
    schema: HoldfastSchema,
    documents: Arc<ParsedQueries>,
}

impl Limited {
    pub fn new(schema: HoldfastSchema, documents: Arc<ParsedQueries>) -> Self {
        Self { schema, documents }
    }
}

impl Executor for Limited {
    async fn execute(&self, mut request: Request) -> Response {
        coded(match self.documents.prepare(&mut request) {
            Ok(()) => self.schema.execute(request).await,
            Err(refusal) => Response::from_errors(vec![refusal]),
        })
    }

    fn execute_stream(
        &self,
        mut request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        match self.documents.prepare(&mut request) {
            Ok(()) => self
                .schema
                .execute_stream_with_session_data(request, session_data.unwrap_or_default())
                .map(coded)
                .boxed(),
            Err(refusal) => Box::pin(futures::stream::once(async move {
                Response::from_errors(vec![refusal])
            })),
        }
    }
}

/// A query that does not validate (an unknown field, a wrong argument) is
/// refused by the schema with no code: the client's, BAD_USER_INPUT, as over
/// HTTP.
fn coded(mut response: Response) -> Response {
    for err in &mut response.errors {
        ensure_coded(err);
    }
    response
}
