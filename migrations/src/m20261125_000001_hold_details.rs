//! Who a hold is for, and safe retries: a reservation keeps its buyer (name,
//! phone, email) and a note, the idempotency key of the call that made it
//! (one key per agent: a retry with the key answers the reservation the first
//! call made), and the version of the hold its expiry warning was sent for
//! (so a warning job that runs twice warns once).

use crate::SqlMigration;

pub const UP: &str = r#"
ALTER TABLE reservation
    ADD COLUMN buyer_name       text CHECK (length(buyer_name) BETWEEN 1 AND 200),
    ADD COLUMN buyer_phone      text CHECK (length(buyer_phone) BETWEEN 1 AND 40),
    ADD COLUMN buyer_email      text CHECK (length(buyer_email) BETWEEN 3 AND 320),
    ADD COLUMN note             text CHECK (length(note) BETWEEN 1 AND 2000),
    ADD COLUMN idempotency_key  text CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    ADD COLUMN warned_version   integer,
    -- a buyer's phone or email without their name would be no buyer at all
    ADD CONSTRAINT chk_reservation_buyer_named CHECK (
        buyer_name IS NOT NULL OR (buyer_phone IS NULL AND buyer_email IS NULL));

-- One reservation per agent and key: two concurrent retries with one key make
-- one reservation, whatever the code above does. A key older than a day is
-- released (set to NULL) by the next call that uses it.
CREATE UNIQUE INDEX reservation_idempotency_key ON reservation (agent_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
"#;

const DOWN: &str = r#"
DROP INDEX IF EXISTS reservation_idempotency_key;
ALTER TABLE reservation
    DROP CONSTRAINT IF EXISTS chk_reservation_buyer_named,
    DROP COLUMN IF EXISTS warned_version,
    DROP COLUMN IF EXISTS idempotency_key,
    DROP COLUMN IF EXISTS note,
    DROP COLUMN IF EXISTS buyer_email,
    DROP COLUMN IF EXISTS buyer_phone,
    DROP COLUMN IF EXISTS buyer_name;
"#;

pub const MIGRATION: SqlMigration = SqlMigration {
    name: "m20261125_000001_hold_details",
    up: UP,
    down: &[DOWN],
};
