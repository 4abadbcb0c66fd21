//! Waiting for what other processes do, and reading what they report.

use std::time::{Duration, Instant};

/// Polls `check` until it holds, or fails after `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of one sample (`name{labels}` or `name`, exactly as printed) in
/// Prometheus text, 0 if absent.
pub fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix(series)?;
            if !rest.starts_with(' ') {
                return None;
            }
            rest.trim().parse().ok()
        })
        .unwrap_or(0.0)
}
