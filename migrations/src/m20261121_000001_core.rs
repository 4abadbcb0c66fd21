//! Workspaces, users, projects, properties and reservations, with the safety
//! nets: no bug in the code above can double-book a property.

use crate::SqlMigration;

pub const UP: &str = r#"
CREATE TABLE workspace (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status      text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'SUSPENDED')),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE app_user (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL REFERENCES workspace (id),
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role          text NOT NULL CHECK (role IN ('ADMIN', 'MANAGER', 'SALES_AGENT')),
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- target of the composite foreign keys below: a row can only point at a
    -- user of its own workspace
    UNIQUE (workspace_id, id)
);
CREATE UNIQUE INDEX app_user_email_per_workspace ON app_user (workspace_id, lower(email));

CREATE TABLE project (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL REFERENCES workspace (id),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (workspace_id, id)
);

CREATE TABLE property (
    id              uuid PRIMARY KEY,
    workspace_id    uuid NOT NULL,
    project_id      uuid NOT NULL,
    code            text NOT NULL CHECK (length(code) BETWEEN 1 AND 64),
    status          text NOT NULL DEFAULT 'AVAILABLE' CHECK (status IN ('AVAILABLE', 'RESERVED', 'SOLD')),
    reserved_by_id  uuid,
    reserved_until  timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    FOREIGN KEY (workspace_id, project_id) REFERENCES project (workspace_id, id),
    FOREIGN KEY (workspace_id, reserved_by_id) REFERENCES app_user (workspace_id, id),
    UNIQUE (workspace_id, id),
    CONSTRAINT property_code_unique_per_project UNIQUE (project_id, code),
    -- a RESERVED property names its holder and its end
    CONSTRAINT chk_reserved_has_user CHECK (
        status <> 'RESERVED' OR (reserved_by_id IS NOT NULL AND reserved_until IS NOT NULL)
    ),
    -- and a property that is not RESERVED keeps no stale holder
    CONSTRAINT chk_unreserved_has_no_holder CHECK (
        status = 'RESERVED' OR (reserved_by_id IS NULL AND reserved_until IS NULL)
    )
);
-- the sweep finds lapsed holds without scanning the table
CREATE INDEX idx_property_expired_reservations ON property (reserved_until) WHERE status = 'RESERVED';
-- counts per project (availablePlots and friends) and status filters
CREATE INDEX property_project_status ON property (project_id, status, reserved_until);
-- workspace-wide listing in code order
CREATE INDEX property_workspace_code ON property (workspace_id, code, id);

CREATE TABLE reservation (
    id               uuid PRIMARY KEY,
    workspace_id     uuid NOT NULL,
    property_id      uuid NOT NULL,
    agent_id         uuid NOT NULL,
    status           text NOT NULL CHECK (status IN ('ACTIVE', 'RELEASED', 'EXPIRED', 'CONVERTED')),
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    ended_at         timestamptz,
    ended_by_id      uuid,
    -- what ended it: agent, manager, job, sweep or takeover; kept for the
    -- history and for the audit that checks every hold ended exactly once
    end_source       text CHECK (end_source IN ('agent', 'manager', 'job', 'sweep', 'takeover')),
    extension_count  integer NOT NULL DEFAULT 0 CHECK (extension_count >= 0),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    FOREIGN KEY (workspace_id, property_id) REFERENCES property (workspace_id, id),
    FOREIGN KEY (workspace_id, agent_id) REFERENCES app_user (workspace_id, id),
    FOREIGN KEY (workspace_id, ended_by_id) REFERENCES app_user (workspace_id, id),
    CONSTRAINT chk_reservation_ended CHECK ((status = 'ACTIVE') = (ended_at IS NULL AND end_source IS NULL)),
    CONSTRAINT chk_reservation_expires_after_created CHECK (expires_at > created_at)
);
-- the last safety net: at most one ACTIVE reservation per property,
-- whatever the code above does
CREATE UNIQUE INDEX reservation_one_active_per_property ON reservation (property_id) WHERE status = 'ACTIVE';
-- release job and sweep look-ups of what is due
CREATE INDEX reservation_active_expires ON reservation (expires_at) WHERE status = 'ACTIVE';
-- the per-agent limit and User.activeReservations
CREATE INDEX reservation_active_by_agent ON reservation (agent_id, expires_at) WHERE status = 'ACTIVE';
-- histories, newest first
CREATE INDEX reservation_property_history ON reservation (property_id, created_at DESC, id DESC);
CREATE INDEX reservation_agent_history ON reservation (agent_id, created_at DESC, id DESC);
CREATE INDEX reservation_workspace_history ON reservation (workspace_id, created_at DESC, id DESC);

-- The state as of now: what every read goes through, so that no read ever
-- shows a lapsed hold as active, whether or not a job or the sweep has run.
CREATE VIEW property_now AS
SELECT id, workspace_id, project_id, code,
       CASE WHEN status = 'RESERVED' AND reserved_until <= now() THEN 'AVAILABLE' ELSE status END AS status,
       CASE WHEN status = 'RESERVED' AND reserved_until <= now() THEN NULL ELSE reserved_by_id END AS reserved_by_id,
       CASE WHEN status = 'RESERVED' AND reserved_until <= now() THEN NULL ELSE reserved_until END AS reserved_until,
       updated_at
FROM property;

CREATE VIEW reservation_now AS
SELECT id, workspace_id, property_id, agent_id,
       CASE WHEN status = 'ACTIVE' AND expires_at <= now() THEN 'EXPIRED' ELSE status END AS status,
       created_at, expires_at, ended_at, ended_by_id, end_source, extension_count, version
FROM reservation;
"#;

const DOWN: &str = r#"
DROP VIEW IF EXISTS reservation_now;
DROP VIEW IF EXISTS property_now;
DROP TABLE IF EXISTS reservation;
DROP TABLE IF EXISTS property;
DROP TABLE IF EXISTS project;
DROP TABLE IF EXISTS app_user;
DROP TABLE IF EXISTS workspace;
"#;

pub const MIGRATION: SqlMigration = SqlMigration {
    name: "m20261121_000001_core",
    up: UP,
    down: &[DOWN],
};
