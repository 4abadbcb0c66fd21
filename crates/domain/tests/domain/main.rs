//! Tests of the reservation rules against a real PostgreSQL, one fresh
//! database per test (see holdfast-testkit).

mod helpers;

mod concurrency;
mod counts;
mod cut_begin;
mod directory;
mod errors;
mod expiry;
mod inventory;
mod line;
mod line_races;
mod model;
mod one_round_trip;
mod reserve;
mod retries;
mod safety_nets;
mod sessions;
mod sweep;
mod team;
mod warnings;
