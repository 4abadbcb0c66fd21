//! Running a team without SQL: a project's currency (an ISO 4217 code, or
//! none) and whether it is archived (left out of project lists; its plots
//! cannot be reserved).

use crate::SqlMigration;

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

pub const MIGRATION: SqlMigration = SqlMigration {
    name: "m20261125_000003_team",
    up: UP,
    down: &[DOWN],
};
