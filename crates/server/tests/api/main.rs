//! End-to-end tests of holdfast-server: the real app on 127.0.0.1:0, a fresh
//! database per test, requests over HTTP.

mod auth;
mod cli;
mod concurrency;
mod errors;
mod helpers;
mod holds;
mod hostile;
mod http;
mod inventory;
mod lifecycle;
mod limits;
mod line;
mod lists;
mod roles;
mod schema;
mod snapshot;
mod team;
mod timeouts;
