//! The GraphQL schema of CONTRACT.md / schema.graphql: types, queries,
//! mutations, loaders and connections, and the limits every query runs under.

pub mod connection;
pub mod context;
pub mod documents;
pub mod loaders;
pub mod mutation;
pub mod pages;
pub mod paging;
pub mod query;
pub mod subscription;
pub mod types;

use async_graphql::{Schema, SchemaBuilder};

pub use context::{RequestAuth, Services};
pub use loaders::Loaders;

pub type HoldfastSchema = Schema<query::Query, mutation::Mutation, subscription::Subscription>;

/// Deepest query accepted: enough for project > properties > edges > node >
/// activeReservation > agent > activeReservations > property > code, and a
/// little more.
pub const MAX_DEPTH: usize = 12;
/// Most costly query accepted; a connection field costs its page length
/// times its nodes' cost, so nested pages of 100 are refused up front.
pub const MAX_COMPLEXITY: usize = 5_000;

fn builder() -> SchemaBuilder<query::Query, mutation::Mutation, subscription::Subscription> {
    Schema::build(query::Query, mutation::Mutation, subscription::Subscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
}

/// The schema a server runs, its subscriptions fed by `hub`. In production
/// introspection is off.
pub fn schema(services: Services, hub: crate::live::Hub, production: bool) -> HoldfastSchema {
    let builder = builder().data(services).data(hub);
    if production {
        builder.disable_introspection().finish()
    } else {
        builder.finish()
    }
}

/// The SDL, as `print-schema` prints it and schema.graphql holds it.
pub fn sdl() -> String {
    builder().finish().sdl()
}
