//! The domain of holdfast: entities, the reservation rules and the locking
//! repository. No HTTP, no GraphQL, no job queue: the server and the worker
//! build on this crate and meet in PostgreSQL.

pub mod audit;
pub mod db;
pub mod directory;
pub mod entities;
pub mod error;
pub mod ids;
pub mod input;
pub mod inventory;
pub mod job;
pub mod line;
pub mod reads;
pub mod reservations;
pub mod rules;
pub mod tally;
pub mod team;

pub use error::{DomainError, DomainResult};
pub use ids::{ProjectId, PropertyId, QueueEntryId, ReservationId, UserId, WorkspaceId};
pub use reservations::{Actor, Buyer, Caller, Policy, ReserveRequest, Reserved};
pub use rules::{Effects, Hold, Written};
