//! Running a team without SQL: a project's currency (an ISO 4217 code, or
//! none) and whether it is archived (left out of project lists; its plots
//! cannot be reserved).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000003_team"
    }
}

pub const UP: &str = r#"
ALTER TABLE project
    ADD COLUMN currency  text CONSTRAINT project_currency_iso_4217 CHECK (currency ~ '^[A-Z]{3}$'),
    ADD COLUMN archived  boolean NOT NULL DEFAULT false;
"#;

const DOWN: &str = r#"
ALTER TABLE project
    DROP COLUMN IF EXISTS archived,
    DROP COLUMN IF EXISTS currency;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}
