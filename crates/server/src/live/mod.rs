//! Live updates: property status changes published through Redis by every
//! process that makes them ([`publish`]), fanned out in each server to its
//! subscribers ([`hub`]), and delivered over WebSocket ([`ws`]).

pub mod connections;
pub mod hub;
pub mod ws;

pub use hub::{DEFAULT_SUBSCRIBER_BUFFER, Delivery, Hub, HubUnavailable, Topic};
