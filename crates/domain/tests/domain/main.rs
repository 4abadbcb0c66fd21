//! Tests of the reservation rules against a real PostgreSQL, one fresh
//! database per test (see holdfast-testkit).

mod helpers;

mod concurrency;
mod directory;
mod errors;
mod expiry;
mod model;
mod reserve;
mod safety_nets;
mod sessions;
mod sweep;
