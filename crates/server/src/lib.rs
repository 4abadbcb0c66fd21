//! holdfast-server: the GraphQL server of holdfast, as a library so that the
//! binary and the tests start exactly the same app (`Application`).

pub mod app;
pub mod auth;
pub mod board;
pub mod cli;
pub mod config;
pub mod deadline;
pub mod error;
pub mod graphiql;
pub mod graphql;
pub mod http;
pub mod import;
pub mod live;
pub mod metrics;
pub mod seed;
pub mod state;

pub use app::Application;
pub use config::Config;
