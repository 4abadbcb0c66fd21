//! Faults made for real against the real binaries: Redis and PostgreSQL
//! stopped under load (private servers of each test's own), the worker and
//! the server killed with SIGKILL mid-work, the link to PostgreSQL cut or
//! gone silent, and `holdfast-server audit`, which every one of these tests
//! ends by running.

mod audit;
mod helpers;
mod network;
mod postgres;
mod redis;
mod retry;
mod server_kill;
mod stall;
mod worker_kill;
