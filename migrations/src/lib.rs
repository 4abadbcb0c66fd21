//! Every schema change of holdfast, in order. Each migration is plain SQL, so
//! that the safety nets (partial unique index, check constraints) read exactly
//! as PostgreSQL enforces them.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_core;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261121_000001_core::Migration)]
    }
}

/// The SQL of every migration, in order: tests use it to tell whether a
/// cached template database still matches the schema.
pub fn schema_sql() -> Vec<&'static str> {
    vec![m20261121_000001_core::UP]
}
