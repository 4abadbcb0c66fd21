//! holdfast-bench: the load generator and benchmarks of holdfast. It drives a
//! running server over GraphQL HTTP the way the web app does (one token and
//! one HTTP connection pool per agent), measures latency and throughput per
//! outcome, and checks the reservation invariants in PostgreSQL after every
//! run. `scripts/bench.sh` (`just bench`) puts the pieces together.

pub mod agents;
pub mod cli;
pub mod client;
pub mod floor;
pub mod invariants;
pub mod lag;
pub mod outcome;
pub mod pgbench;
pub mod progress;
pub mod promotions;
pub mod results;
pub mod scenarios;
pub mod setup;
pub mod stats;
pub mod sweep;
