//! The GraphQL schema (printed to schema.graphql): types, queries,
//! mutations, loaders and connections, and the limits every query runs under.

pub mod connection;
pub mod context;
pub mod documents;
pub mod inventory;
pub mod limited;
pub mod limits;
pub mod line;
pub mod loaders;
pub mod mutation;
pub mod pages;
pub mod paging;
pub mod query;
pub mod snapshot;
pub mod subscription;
pub mod team;
pub mod types;

use async_graphql::{MergedObject, Schema, SchemaBuilder};

pub use context::{RequestAuth, Services};
pub use loaders::Loaders;

pub type HoldfastSchema = Schema<query::Query, Mutation, subscription::Subscription>;

/// Every mutation of the schema: each group lives in its own module.
#[derive(MergedObject, Default)]
pub struct Mutation(
    mutation::HoldMutation,
    team::TeamMutation,
    inventory::InventoryMutation,
);

pub use limits::MAX_DEPTH;

/// async-graphql's own depth limit, which counts every field: a ceiling over
/// [`MAX_DEPTH`], which `limits.rs` checks first and where introspection's
/// `ofType` does not count. graphql-js' standard introspection query is 15
/// deep this way (9 of them `ofType`); this leaves room for tools that
/// unwrap a few more levels.
pub const DEPTH_CEILING: usize = 24;
/// Most costly query accepted; a connection field costs its page length
/// times its nodes' cost, so nested pages of 100 are refused up front.
/// Introspection has a cost limit of its own (`limits.rs`).
pub const MAX_COMPLEXITY: usize = 5_000;

fn builder() -> SchemaBuilder<query::Query, Mutation, subscription::Subscription> {
    Schema::build(
        query::Query,
        Mutation::default(),
        subscription::Subscription,
    )
    .limit_depth(DEPTH_CEILING)
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
