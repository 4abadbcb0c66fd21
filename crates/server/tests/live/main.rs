//! Live updates and operations against real processes: servers and a worker
//! on one database and one private Redis queue, WebSocket subscribers, and
//! what /metrics and the JSON logs say.

mod helpers;

mod auth;
mod feed;
mod holds;
mod limits;
mod line;
mod load;
mod logs;
mod metrics;
mod outage;
mod slow;
