//! The request timeout (`HOLDFAST_REQUEST_TIMEOUT`): no GraphQL request over
//! HTTP takes longer, whatever PostgreSQL or Redis do. Past it the answer is
//! `SERVICE_UNAVAILABLE`, and whatever the request was doing is dropped: a
//! transaction not yet committed with it, which PostgreSQL rolls back.
//!
//! Where the deadline falls relative to a commit: a write must have
//! committed [`AFTER_COMMIT`] before the deadline, because a commit owes
//! work in Redis (the hold jobs, the live events; `Outbox::after_commit`),
//! each call bounded by that second and run side by side. So once a write
//! has committed, what is left of it always fits before the deadline, and
//! Redis can never turn a committed reservation into an error: its answer
//! is the reservation (a job Redis did not take is the sweep's to make up
//! for). A write whose commit has not answered by then is abandoned and
//! answered `SERVICE_UNAVAILABLE`: rolled back, unless the link failed
//! while its COMMIT was on its way, the one case where the outcome is
//! unknown to the client, as with any answer lost in transit.
//!
//! Everything else (the caller's session, the reads of the answer) runs
//! under the deadline itself, and the whole request is cut there.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_graphql::Context;
use holdfast_domain::Written;
use holdfast_domain::{DomainError, Effects};
use sea_orm::DbErr;
use tokio::time::Instant;

use crate::config::HumanDuration;
use crate::error::{Code, coded};

/// What a write keeps of the request's time for the work its commit owes
/// in Redis: the bound of each of those calls (holdfast-queue's), which run
/// side by side.
pub const AFTER_COMMIT: Duration = Duration::from_secs(1);

/// One request's deadline, shared by its resolvers (request data).
#[derive(Clone, Debug)]
pub struct Deadline(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    at: Instant,
    timeout: Duration,
    /// Whether anything of the request was cut by it.
    missed: AtomicBool,
}

impl Deadline {
    /// The deadline of a request that began at `started`.
    pub fn after(started: std::time::Instant, timeout: Duration) -> Self {
        Self(Arc::new(Inner {
            at: Instant::from_std(started) + timeout,
            timeout,
            missed: AtomicBool::new(false),
        }))
    }

    pub fn at(&self) -> Instant {
        self.0.at
    }

    pub fn timeout(&self) -> Duration {
        self.0.timeout
    }

    /// The latest a write may commit.
    pub fn commit_by(&self) -> Instant {
        self.0.at.checked_sub(AFTER_COMMIT).unwrap_or(self.0.at)
    }

    /// Whether the deadline cut anything of the request.
    pub fn missed(&self) -> bool {
        self.0.missed.load(Ordering::Relaxed)
    }

    pub fn miss(&self) {
        self.0.missed.store(true, Ordering::Relaxed);
    }

    /// The database part of a write, which must commit by
    /// [`commit_by`](Self::commit_by); past it the write is dropped (rolled
    /// back) and answers as a database that did not answer.
    pub async fn write<T>(&self, work: impl Future<Output = Written<T>>) -> Written<T> {
        match tokio::time::timeout_at(self.commit_by(), work).await {
            Ok(written) => written,
            Err(_) => {
                self.miss();
                Written {
                    result: Err(DomainError::Unavailable(DbErr::Custom(format!(
                        "no commit within the request timeout ({}, less {} kept for the work after a commit)",
                        HumanDuration(self.0.timeout),
                        HumanDuration(AFTER_COMMIT),
                    )))),
                    effects: Effects::default(),
                }
            }
        }
    }

    /// The answer of a request cut at its deadline.
    pub fn error(&self) -> async_graphql::Error {
        coded(
            Code::ServiceUnavailable,
            format!(
                "the request took longer than {} and was abandoned; try again",
                HumanDuration(self.0.timeout)
            ),
        )
    }
}

/// Runs the database part of a resolver's write within the request's
/// deadline (see the module's rule). A request that carries none (an
/// operation over the WebSocket) gets one from now.
pub async fn commit_in_time<T>(
    ctx: &Context<'_>,
    work: impl Future<Output = Written<T>>,
) -> Written<T> {
    let deadline = match ctx.data_opt::<Deadline>() {
        Some(deadline) => deadline.clone(),
        None => {
            let timeout = ctx
                .data_opt::<crate::graphql::Services>()
                .map_or(crate::config::DEFAULT_REQUEST_TIMEOUT, |s| {
                    s.request_timeout
                });
            Deadline::after(std::time::Instant::now(), timeout)
        }
    };
    deadline.write(work).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done<T>(value: T) -> Written<T> {
        Written {
            result: Ok(value),
            effects: Effects::default(),
        }
    }

    #[tokio::test]
    async fn a_write_must_commit_a_second_before_the_deadline() {
        let deadline = Deadline::after(std::time::Instant::now(), Duration::from_millis(1300));
        let started = Instant::now();
        let written = deadline
            .write(async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                done(())
            })
            .await;
        let took = started.elapsed();
        assert!(matches!(written.result, Err(DomainError::Unavailable(_))));
        assert!(
            (Duration::from_millis(250)..Duration::from_millis(1000)).contains(&took),
            "{took:?}"
        );
        assert!(deadline.missed());
    }

    #[tokio::test]
    async fn a_write_that_commits_in_time_is_left_alone() {
        let deadline = Deadline::after(std::time::Instant::now(), Duration::from_secs(3));
        let written = deadline
            .write(async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                done(7)
            })
            .await;
        assert_eq!(written.result.ok(), Some(7));
        assert!(!deadline.missed());
    }
}
