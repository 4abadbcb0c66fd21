//! The line behind a held plot: one row per queue entry, kept forever like
//! reservations. An entry WAITs for a plot until its turn comes (it is then
//! PROMOTED to a hold of its agent, and the hold names the entry), its agent
//! or a manager takes it out (LEFT), it is passed over because its agent
//! cannot hold (SKIPPED), or the plot is sold or withdrawn (CLOSED).

use crate::SqlMigration;

pub const UP: &str = r#"
-- target of the composite foreign key below: an entry can only name a hold
-- of its own workspace
ALTER TABLE reservation ADD CONSTRAINT reservation_workspace_id UNIQUE (workspace_id, id);

CREATE TABLE queue_entry (
    id              uuid PRIMARY KEY,
    workspace_id    uuid NOT NULL,
    property_id     uuid NOT NULL,
    agent_id        uuid NOT NULL,
    buyer_name      text CHECK (length(buyer_name) BETWEEN 1 AND 200),
    buyer_phone     text CHECK (length(buyer_phone) BETWEEN 1 AND 40),
    buyer_email     text CHECK (length(buyer_email) BETWEEN 3 AND 320),
    status          text NOT NULL CHECK (status IN ('WAITING', 'PROMOTED', 'LEFT', 'SKIPPED', 'CLOSED')),
    created_at      timestamptz NOT NULL,
    ended_at        timestamptz,
    ended_by_id     uuid,
    reservation_id  uuid,
    FOREIGN KEY (workspace_id, property_id) REFERENCES property (workspace_id, id),
    FOREIGN KEY (workspace_id, agent_id) REFERENCES app_user (workspace_id, id),
    FOREIGN KEY (workspace_id, ended_by_id) REFERENCES app_user (workspace_id, id),
    FOREIGN KEY (workspace_id, reservation_id) REFERENCES reservation (workspace_id, id),
    UNIQUE (workspace_id, id),
    CONSTRAINT chk_queue_entry_ended CHECK ((status = 'WAITING') = (ended_at IS NULL)),
    CONSTRAINT chk_queue_entry_promoted CHECK ((status = 'PROMOTED') = (reservation_id IS NOT NULL)),
    CONSTRAINT chk_queue_entry_buyer_named CHECK (
        buyer_name IS NOT NULL OR (buyer_phone IS NULL AND buyer_email IS NULL))
);
-- one waiting entry per agent and plot, whatever the code above does
CREATE UNIQUE INDEX queue_entry_one_waiting_per_agent ON queue_entry (property_id, agent_id)
    WHERE status = 'WAITING';
-- the line of a plot, first come first served
CREATE INDEX queue_entry_line ON queue_entry (property_id, created_at, id) WHERE status = 'WAITING';
-- histories, newest first
CREATE INDEX queue_entry_property_history ON queue_entry (property_id, created_at DESC, id DESC);
CREATE INDEX queue_entry_agent_history ON queue_entry (agent_id, created_at DESC, id DESC);
CREATE INDEX queue_entry_workspace_history ON queue_entry (workspace_id, created_at DESC, id DESC);

-- A hold that came from the line names its entry (at most one hold each).
ALTER TABLE reservation ADD COLUMN queue_entry_id uuid;
ALTER TABLE reservation ADD CONSTRAINT reservation_queue_entry
    FOREIGN KEY (workspace_id, queue_entry_id) REFERENCES queue_entry (workspace_id, id);
CREATE UNIQUE INDEX reservation_one_per_queue_entry ON reservation (queue_entry_id)
    WHERE queue_entry_id IS NOT NULL;
"#;

const DOWN: &str = r#"
DROP INDEX IF EXISTS reservation_one_per_queue_entry;
ALTER TABLE reservation DROP CONSTRAINT IF EXISTS reservation_queue_entry;
ALTER TABLE reservation DROP COLUMN IF EXISTS queue_entry_id;
DROP TABLE IF EXISTS queue_entry;
ALTER TABLE reservation DROP CONSTRAINT IF EXISTS reservation_workspace_id;
"#;

pub const MIGRATION: SqlMigration = SqlMigration {
    name: "m20261125_000002_queue",
    up: UP,
    down: &[DOWN],
};
