//! Every schema change of holdfast, in order, and the hold rules that act on
//! the schema. Each migration is plain SQL, so that the safety nets (partial
//! unique index, check constraints) read exactly as PostgreSQL enforces them.
//! The rules (`rules.sql`: functions and views in the schema `rules`) are not
//! versioned: [`migrate`] installs the current ones after the migrations.

pub use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DatabaseConnection, TransactionTrait};

mod m20261121_000001_core;
mod m20261125_000001_hold_details;
mod m20261125_000002_queue;
mod m20261125_000003_team;
mod m20261125_000004_inventory;
mod m20261126_000001_plot_count;
mod m20261126_000002_plot_tally;

/// The hold rules: what "now" is, when a hold lapsed, how holds begin and end,
/// and the reads as of now. See the top of the file.
pub const RULES: &str = include_str!("rules.sql");

/// A migration written as plain SQL: `up` applies it, `down` (its scripts
/// in order) undoes it. Every migration of holdfast is one; each module names
/// its own.
pub struct SqlMigration {
    pub name: &'static str,
    pub up: &'static str,
    pub down: &'static [&'static str],
}

impl MigrationName for SqlMigration {
    fn name(&self) -> &str {
        self.name
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SqlMigration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(self.up).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for script in self.down {
            manager.get_connection().execute_unprepared(script).await?;
        }
        Ok(())
    }
}

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_core::MIGRATION),
            Box::new(m20261125_000001_hold_details::MIGRATION),
            Box::new(m20261125_000002_queue::MIGRATION),
            Box::new(m20261125_000003_team::MIGRATION),
            Box::new(m20261125_000004_inventory::MIGRATION),
            Box::new(m20261126_000001_plot_count::MIGRATION),
            Box::new(m20261126_000002_plot_tally::MIGRATION),
        ]
    }
}

/// Applies every pending migration, then (re)installs the hold rules, in one
/// transaction of their own: what `holdfast-server migrate` does. Running it
/// twice is harmless.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await?;
    let txn = db.begin().await?;
    txn.execute_unprepared(RULES).await?;
    txn.commit().await
}

/// The SQL of every migration, in order, and of the rules: tests use it to
/// tell whether a cached template database still matches the schema.
pub fn schema_sql() -> Vec<&'static str> {
    vec![
        m20261121_000001_core::UP,
        m20261125_000001_hold_details::UP,
        m20261125_000002_queue::UP,
        m20261125_000003_team::UP,
        m20261125_000004_inventory::UP,
        m20261126_000001_plot_count::UP,
        m20261126_000002_plot_tally::UP,
        RULES,
    ]
}
