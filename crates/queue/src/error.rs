//! The queue's one error type.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// `REDIS_URL` is not a Redis URL.
    #[error("malformed Redis URL: {0}")]
    InvalidUrl(#[source] redis::RedisError),

    /// `HOLDFAST_QUEUE` cannot be used as a key prefix.
    #[error("invalid queue name {name:?}: {reason}")]
    InvalidQueueName { name: String, reason: &'static str },

    /// Redis did not answer within the bound we give it: a request must never
    /// hang on a Redis outage.
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),

    /// Redis answered with an error, or the connection failed.
    #[error("Redis error: {0}")]
    Redis(#[from] redis::RedisError),

    /// The push script failed (apalis-redis wraps Redis errors in its own type).
    #[error("could not push the job: {0}")]
    Push(#[from] apalis_redis::Error),

    /// The payload could not be encoded (never happens for plain ids).
    #[error("could not encode the job: {0}")]
    Encode(#[from] serde_json::Error),
}
