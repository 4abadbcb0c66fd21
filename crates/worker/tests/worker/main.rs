//! holdfast-worker against the real PostgreSQL and Redis: each test has a
//! database and a queue of its own, and hold times of a few seconds.

mod delayed_jobs;
mod full_cycle;
mod handler;
mod helpers;
mod line;
mod logs;
mod outage;
mod process;
mod readiness;
mod replicas;
mod sweep;
