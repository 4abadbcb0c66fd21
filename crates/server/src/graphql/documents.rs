//! Parsed GraphQL documents, by query text, with their shape for the limits
//! (`limits.rs`). Clients send the same few queries over and over (a web
//! app's queries are constants), and parsing one costs more than copying its
//! parsed form (the figures are in docs/BENCHMARKS.md). Validation, and the
//! limits that depend on the variables, still run on every request.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use async_graphql::ServerError;
use async_graphql::parser::types::ExecutableDocument;
use lru::LruCache;

use super::limits::Shape;

/// Distinct queries kept; the least recently used one goes first.
const CAPACITY: NonZeroUsize = NonZeroUsize::new(256).expect("non-zero");
/// Longer queries are parsed (and checked) every time, not kept, so that a
/// client cannot fill the cache with large one-off documents.
const MAX_QUERY_BYTES: usize = 8 * 1024;

type Entry = (ExecutableDocument, Arc<Shape>);

pub struct ParsedQueries {
    cache: Mutex<LruCache<String, Entry>>,
}

impl Default for ParsedQueries {
    fn default() -> Self {
        Self {
            cache: Mutex::new(LruCache::new(CAPACITY)),
        }
    }
}

impl ParsedQueries {
    /// Gives `request` its parsed document, from the cache or parsed now,
    /// and checks it against the limits, with its variables: the refusal,
    /// if it is over one. A query that does not parse is left to the schema,
    /// which reports the error as it always does; only documents that parsed
    /// are kept.
    pub fn prepare(&self, request: &mut async_graphql::Request) -> Result<(), ServerError> {
        let cached = if request.query.len() > MAX_QUERY_BYTES {
            None
        } else {
            self.lock()
                .get(request.query.as_str())
                .map(|(doc, shape)| (doc.clone(), Arc::clone(shape)))
        };
        let (doc, shape) = match cached {
            Some(entry) => entry,
            None => {
                let Ok(doc) = async_graphql::parser::parse_query(&request.query) else {
                    return Ok(());
                };
                let shape = Arc::new(Shape::of(&doc));
                if request.query.len() <= MAX_QUERY_BYTES {
                    self.lock()
                        .put(request.query.clone(), (doc.clone(), Arc::clone(&shape)));
                }
                (doc, shape)
            }
        };
        request.set_parsed_query(doc);
        shape.check(request.operation_name.as_deref(), &request.variables)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, Entry>> {
        // A panic while holding it cannot leave the cache inconsistent (each
        // call is one get or put), so a poisoned lock is still usable.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_parsed_once_and_then_copied() {
        let cache = ParsedQueries::default();
        let mut first = async_graphql::Request::new("{ me { id } }");
        cache.prepare(&mut first).expect("within the limits");
        assert_eq!(cache.lock().len(), 1);
        let mut second = async_graphql::Request::new("{ me { id } }");
        cache.prepare(&mut second).expect("within the limits");
        assert_eq!(cache.lock().len(), 1);
        assert_eq!(
            format!("{:?}", first.parsed_query().expect("parsed")),
            format!("{:?}", second.parsed_query().expect("parsed"))
        );
    }

    #[test]
    fn broken_and_huge_queries_are_not_kept() {
        let cache = ParsedQueries::default();
        cache
            .prepare(&mut async_graphql::Request::new("{ me { id "))
            .expect("left to the schema");
        let huge = format!("{{ {} }}", "me { id } ".repeat(2000));
        cache
            .prepare(&mut async_graphql::Request::new(huge))
            .expect("within the limits");
        assert_eq!(cache.lock().len(), 0);
    }

    #[test]
    fn a_cached_document_is_checked_again_with_each_requests_variables() {
        let cache = ParsedQueries::default();
        let query = "query($n: Int) { projects(first: $n) { nodes { id } } }";
        let with = |n: i64| {
            async_graphql::Request::new(query).variables(async_graphql::Variables::from_json(
                serde_json::json!({ "n": n }),
            ))
        };
        cache.prepare(&mut with(10)).expect("10 fits");
        let refusal = cache.prepare(&mut with(1000)).expect_err("1000 does not");
        assert_eq!(
            refusal.message,
            "first is 1000; a page holds at most 100 items"
        );
        assert_eq!(cache.lock().len(), 1);
    }
}
