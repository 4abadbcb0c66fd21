//! A project's plots counted by status, kept as they change (`plot_tally`),
//! so that a board's counts read a few rows instead of every held plot.
//!
//! Why not one row per project: every reserve and release of the project
//! would then queue on that row. So the tally is split into 64 shards, and a
//! plot always counts in the same one (the last byte of its id, random in a
//! UUIDv7, modulo 64). A shard alone means nothing; a project's counts are
//! the sums of its shards, exact in every snapshot, since they are written in
//! the transaction that changes the plots.
//!
//! When: at the commit. The triggers are deferred constraint triggers, so a
//! transaction takes its tally rows' locks last, after every plot and agent
//! row it locks, and holds them only while it commits (a sweep's batch takes
//! them in their order as the last step of its one statement). Taken
//! earlier, a release that hands the plot on (it locks the next agent's row
//! after the plot's status changed) would hold a tally row while waiting for
//! a row that a reserve of the same shard holds while waiting for that tally
//! row: a deadlock. Two reserves of one project meet on a row only when their plots
//! share a shard and they commit at the same moment. Transactions that change
//! many plots take shared rows in one order: a sweep's batch locks its rows
//! in (project, shard) order, and a bulk change recounts its project, locking
//! its 64 rows in shard order. Plots added in one call of `add_properties`
//! (up to 1,000) are counted at its commit in the order they were added,
//! which can meet a sweep's batch the other way round; PostgreSQL detects
//! that, and one of them answers BUSY.
//!
//! How: row by row, +1 for the plot as it is after and -1 as it was before;
//! a change of status within a project is one UPDATE of one row. An update
//! that changes neither status nor project (a price, a hold extended) does
//! not fire. A statement-level trigger (transition tables, one grouped
//! upsert) cost a reserve 17% of its rate in pgbench against 5-9% for a row
//! trigger, and cannot be deferred. Bulk changes (an import, a benchmark's
//! reset) skip the triggers and recount the project once before they commit
//! (`plot_tally_recount`, below); a sweep's batches of 1,000 count row by
//! row.
//!
//! This replaces `project.plot_count` (the number of plots only), which the
//! tally's `plots` column now holds.

use crate::SqlMigration;

pub const UP: &str = r#"
CREATE TABLE plot_tally (
    project_id uuid NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    shard      smallint NOT NULL CHECK (shard BETWEEN 0 AND 63),
    plots      bigint NOT NULL,
    reserved   bigint NOT NULL,
    sold       bigint NOT NULL,
    withdrawn  bigint NOT NULL,
    PRIMARY KEY (project_id, shard)
);

-- The shard a plot counts in.
CREATE FUNCTION plot_tally_shard(plot uuid) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (get_byte(uuid_send(plot), 15) % 64)::smallint
$$;

-- Adds to one shard of a project: an UPDATE of its row, or the row itself
-- the first time (two transactions making it at once: the second updates
-- the first's).
CREATE FUNCTION plot_tally_add(p_project uuid, p_shard smallint, p_plots int,
                               p_reserved int, p_sold int, p_withdrawn int)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  UPDATE plot_tally
     SET plots = plots + p_plots, reserved = reserved + p_reserved,
         sold = sold + p_sold, withdrawn = withdrawn + p_withdrawn
   WHERE project_id = p_project AND shard = p_shard;
  IF NOT FOUND THEN
    INSERT INTO plot_tally AS t (project_id, shard, plots, reserved, sold, withdrawn)
    VALUES (p_project, p_shard, p_plots, p_reserved, p_sold, p_withdrawn)
    ON CONFLICT (project_id, shard) DO UPDATE
       SET plots = t.plots + excluded.plots, reserved = t.reserved + excluded.reserved,
           sold = t.sold + excluded.sold, withdrawn = t.withdrawn + excluded.withdrawn;
  END IF;
END
$$;

-- One plot added, removed, or changed in status or project. A change of
-- status within a project (every reserve and release) is one UPDATE written
-- here: calling plot_tally_add for it (a second PL/pgSQL call) cost a
-- reserve three times as much in pgbench.
CREATE FUNCTION plot_tally_plot_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.project_id = NEW.project_id THEN
    UPDATE plot_tally
       SET reserved = reserved + (NEW.status = 'RESERVED')::int - (OLD.status = 'RESERVED')::int,
           sold = sold + (NEW.status = 'SOLD')::int - (OLD.status = 'SOLD')::int,
           withdrawn = withdrawn + (NEW.status = 'WITHDRAWN')::int - (OLD.status = 'WITHDRAWN')::int
     WHERE project_id = NEW.project_id AND shard = plot_tally_shard(NEW.id);
    IF FOUND THEN
      RETURN NULL;
    END IF;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    PERFORM plot_tally_add(OLD.project_id, plot_tally_shard(OLD.id), -1,
      -(OLD.status = 'RESERVED')::int, -(OLD.status = 'SOLD')::int, -(OLD.status = 'WITHDRAWN')::int);
  END IF;
  IF TG_OP <> 'DELETE' THEN
    PERFORM plot_tally_add(NEW.project_id, plot_tally_shard(NEW.id), 1,
      (NEW.status = 'RESERVED')::int, (NEW.status = 'SOLD')::int, (NEW.status = 'WITHDRAWN')::int);
  END IF;
  RETURN NULL;
END
$$;

-- Bulk changes of plots (an import, a benchmark's reset) count once at the
-- end instead of row by row: their transaction sets holdfast.tally to
-- 'recount' (SET LOCAL), which the triggers skip, and calls this before it
-- commits. Row by row, 100,000 changes of one project cost 26 s more at the
-- commit (each of the 64 rows updated 1,600 times in one transaction, and
-- PostgreSQL walks every version the transaction made of a row to update it
-- again); counting the project's plots costs tens of milliseconds. The
-- project's 64 rows are made if missing and locked first, so that every
-- transaction that changed its plots has either committed (and is counted
-- here) or will add its own change after this one commits.
CREATE FUNCTION plot_tally_recount(p_project uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO plot_tally (project_id, shard, plots, reserved, sold, withdrawn)
  SELECT p_project, s, 0, 0, 0, 0 FROM generate_series(0, 63) s
  ON CONFLICT (project_id, shard) DO NOTHING;
  PERFORM 1 FROM plot_tally WHERE project_id = p_project ORDER BY shard FOR UPDATE;
  UPDATE plot_tally t
     SET plots = c.plots, reserved = c.reserved, sold = c.sold, withdrawn = c.withdrawn
    FROM (SELECT s.shard, count(p.id) AS plots,
                 count(p.id) FILTER (WHERE p.status = 'RESERVED') AS reserved,
                 count(p.id) FILTER (WHERE p.status = 'SOLD') AS sold,
                 count(p.id) FILTER (WHERE p.status = 'WITHDRAWN') AS withdrawn
            FROM generate_series(0, 63) AS s(shard)
            LEFT JOIN property p ON p.project_id = p_project AND plot_tally_shard(p.id) = s.shard
           GROUP BY s.shard) c
   WHERE t.project_id = p_project AND t.shard = c.shard;
END
$$;

DROP TRIGGER property_plot_moved ON property;
DROP TRIGGER property_plots_removed ON property;
DROP TRIGGER property_plots_added ON property;
DROP FUNCTION project_plot_moved();
DROP FUNCTION project_plots_removed();
DROP FUNCTION project_plots_added();
ALTER TABLE project DROP COLUMN plot_count;

CREATE CONSTRAINT TRIGGER property_tally_insert AFTER INSERT ON property
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (current_setting('holdfast.tally', true) IS DISTINCT FROM 'recount')
    EXECUTE FUNCTION plot_tally_plot_changed();
CREATE CONSTRAINT TRIGGER property_tally_update AFTER UPDATE OF status, project_id ON property
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN ((OLD.status IS DISTINCT FROM NEW.status OR OLD.project_id IS DISTINCT FROM NEW.project_id)
          AND current_setting('holdfast.tally', true) IS DISTINCT FROM 'recount')
    EXECUTE FUNCTION plot_tally_plot_changed();
CREATE CONSTRAINT TRIGGER property_tally_delete AFTER DELETE ON property
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (current_setting('holdfast.tally', true) IS DISTINCT FROM 'recount')
    EXECUTE FUNCTION plot_tally_plot_changed();

SELECT plot_tally_recount(id) FROM project;
"#;

// Back to the stored number of plots: the tally goes, and the earlier
// migration's column and triggers come back, counted again from the plots.
const DOWN: &str = r#"
DROP TRIGGER IF EXISTS property_tally_delete ON property;
DROP TRIGGER IF EXISTS property_tally_update ON property;
DROP TRIGGER IF EXISTS property_tally_insert ON property;
DROP FUNCTION IF EXISTS plot_tally_recount(uuid);
DROP FUNCTION IF EXISTS plot_tally_plot_changed();
DROP FUNCTION IF EXISTS plot_tally_add(uuid, smallint, int, int, int, int);
DROP FUNCTION IF EXISTS plot_tally_shard(uuid);
DROP TABLE IF EXISTS plot_tally;
"#;

pub const MIGRATION: SqlMigration = SqlMigration {
    name: "m20261126_000002_plot_tally",
    up: UP,
    down: &[DOWN, super::m20261126_000001_plot_count::UP],
};
