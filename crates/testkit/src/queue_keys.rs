//! A test's Redis queue: a unique name, and its keys deleted when the test
//! is done, so that parallel tests never share jobs and none leaves keys
//! behind.

/// A queue name no other test uses.
pub fn unique_queue() -> String {
    format!("hf-test-{}", uuid::Uuid::new_v4().simple())
}

/// A test's queue name; its keys in the Redis at `redis_url` are deleted
/// when this is dropped (even when the test panicked).
pub struct QueueKeys {
    pub name: String,
    pub redis_url: String,
}

impl QueueKeys {
    /// A new queue on the shared Redis.
    pub fn new() -> QueueKeys {
        QueueKeys {
            name: unique_queue(),
            redis_url: crate::redis_url(),
        }
    }
}

impl Default for QueueKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for QueueKeys {
    fn drop(&mut self) {
        delete_queue_keys(&self.redis_url, &self.name);
    }
}

/// Deletes every key of `queue`, and its entry in apalis-redis's global
/// list of queues. Best effort (a Redis that is down keeps them); runs on a
/// thread of its own, as a drop may run inside a runtime. SCAN, not KEYS: a
/// Redis holding many keys is not blocked while tests run beside it.
fn delete_queue_keys(redis_url: &str, queue: &str) {
    let (url, name) = (redis_url.to_owned(), queue.to_owned());
    let _ = std::thread::spawn(move || {
        use redis::Commands as _;
        let Ok(client) = redis::Client::open(url) else {
            return;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(std::time::Duration::from_secs(1))
        else {
            return;
        };
        let keys: Vec<String> = match conn.scan_match::<_, String>(format!("{name}:*")) {
            Ok(iter) => iter.filter_map(Result::ok).collect(),
            Err(_) => return,
        };
        for chunk in keys.chunks(500) {
            let _: Result<(), _> = redis::cmd("UNLINK").arg(chunk).query(&mut conn);
        }
        let _: Result<(), _> = redis::cmd("ZREM")
            .arg("core:apalis:queues:list")
            .arg(format!("{name}:workers"))
            .query(&mut conn);
    })
    .join();
}
