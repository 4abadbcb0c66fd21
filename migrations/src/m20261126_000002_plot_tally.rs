//! A project's plots counted by status, kept as they change (`plot_tally`),
//! so that a board's counts read a few rows instead of every held plot.
//!
//! Why not one row per project: every reserve and release of the project
//! would then queue on that row until its commit. So the tally is split into
//! shards, and a change is added to the shard of the PostgreSQL session that
//! makes it (its backend's pid modulo 64). A session runs one transaction at
//! a time, so two concurrent reserves meet on a row only when their sessions'
//! pids share a shard, and then wait no longer than the other's commit. A
//! shard alone means nothing (a plot held in one session and released in
//! another leaves +1 and -1 in two shards); a project's counts are the sums
//! of its shards, exact in every snapshot, since the shards are written in
//! the transaction that changes the plots.
//!
//! Triggers on `property` add what a statement changed: +1 for each plot as
//! it is after, -1 for each plot as it was before, by project and status.
//! Plots added or removed are counted once per statement (an import of
//! 10,000 plots is one row written); a change of status or project is
//! counted row by row, cheapest for the one plot of a reserve. An update
//! that changes neither (a price, a hold extended) does not fire it.
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

-- Adds the plots `added` and takes away the plots `removed` (each given as
-- its project and status, in two arrays of one length), in this session's
-- shard. Projects in id order, so that two statements that touch several
-- projects lock their rows in one order. PL/pgSQL rather than SQL: it keeps
-- its plan for the session, where an SQL function called from a trigger is
-- planned again on every call (a reserve paid 0.2 ms for that).
CREATE FUNCTION plot_tally_add(added_project uuid[], added_status text[],
                               removed_project uuid[], removed_status text[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO plot_tally AS t (project_id, shard, plots, reserved, sold, withdrawn)
  SELECT c.project_id, pg_backend_pid() % 64, sum(c.n),
         coalesce(sum(c.n) FILTER (WHERE c.status = 'RESERVED'), 0),
         coalesce(sum(c.n) FILTER (WHERE c.status = 'SOLD'), 0),
         coalesce(sum(c.n) FILTER (WHERE c.status = 'WITHDRAWN'), 0)
  FROM (SELECT a.project_id, a.status, 1 AS n FROM unnest(added_project, added_status) AS a(project_id, status)
        UNION ALL
        SELECT r.project_id, r.status, -1 FROM unnest(removed_project, removed_status) AS r(project_id, status)) c
  GROUP BY c.project_id
  HAVING sum(c.n) <> 0
      OR sum(c.n) FILTER (WHERE c.status = 'RESERVED') <> 0
      OR sum(c.n) FILTER (WHERE c.status = 'SOLD') <> 0
      OR sum(c.n) FILTER (WHERE c.status = 'WITHDRAWN') <> 0
  ORDER BY c.project_id
  ON CONFLICT (project_id, shard) DO UPDATE
     SET plots = t.plots + excluded.plots, reserved = t.reserved + excluded.reserved,
         sold = t.sold + excluded.sold, withdrawn = t.withdrawn + excluded.withdrawn;
END
$$;

-- Plots added or removed, many to a statement (an import is one statement).
CREATE FUNCTION plot_tally_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM plot_tally_add(ARRAY(SELECT project_id FROM after_rows), ARRAY(SELECT status FROM after_rows),
                           '{}', '{}');
  ELSE
    PERFORM plot_tally_add('{}', '{}',
                           ARRAY(SELECT project_id FROM before_rows), ARRAY(SELECT status FROM before_rows));
  END IF;
  RETURN NULL;
END
$$;

-- One plot whose status (or project) changed: every reserve and release.
-- Row by row, and in the common case one plain UPDATE of the session's row
-- (the same sums as plot_tally_add, for one plot): measured with pgbench on
-- the reserve statement, this costs a reserve 9% of its rate, where a
-- statement-level trigger (transition tables and the grouped upsert) cost
-- 17%. The first change of a project in a shard, and a plot moved to
-- another project, go through plot_tally_add.
CREATE FUNCTION plot_tally_plot_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.project_id = NEW.project_id THEN
    UPDATE plot_tally
       SET reserved = reserved + (NEW.status = 'RESERVED')::int - (OLD.status = 'RESERVED')::int,
           sold = sold + (NEW.status = 'SOLD')::int - (OLD.status = 'SOLD')::int,
           withdrawn = withdrawn + (NEW.status = 'WITHDRAWN')::int - (OLD.status = 'WITHDRAWN')::int
     WHERE project_id = NEW.project_id AND shard = pg_backend_pid() % 64;
    IF FOUND THEN
      RETURN NULL;
    END IF;
  END IF;
  PERFORM plot_tally_add(ARRAY[NEW.project_id], ARRAY[NEW.status], ARRAY[OLD.project_id], ARRAY[OLD.status]);
  RETURN NULL;
END
$$;

DROP TRIGGER property_plot_moved ON property;
DROP TRIGGER property_plots_removed ON property;
DROP TRIGGER property_plots_added ON property;
DROP FUNCTION project_plot_moved();
DROP FUNCTION project_plots_removed();
DROP FUNCTION project_plots_added();
ALTER TABLE project DROP COLUMN plot_count;

CREATE TRIGGER property_tally_insert AFTER INSERT ON property
    REFERENCING NEW TABLE AS after_rows FOR EACH STATEMENT EXECUTE FUNCTION plot_tally_changed();
CREATE TRIGGER property_tally_update AFTER UPDATE OF status, project_id ON property
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.project_id IS DISTINCT FROM NEW.project_id)
    EXECUTE FUNCTION plot_tally_plot_changed();
CREATE TRIGGER property_tally_delete AFTER DELETE ON property
    REFERENCING OLD TABLE AS before_rows FOR EACH STATEMENT EXECUTE FUNCTION plot_tally_changed();

INSERT INTO plot_tally (project_id, shard, plots, reserved, sold, withdrawn)
SELECT project_id, 0, count(*), count(*) FILTER (WHERE status = 'RESERVED'),
       count(*) FILTER (WHERE status = 'SOLD'), count(*) FILTER (WHERE status = 'WITHDRAWN')
FROM property GROUP BY project_id;
"#;

// Back to the stored number of plots: the tally goes, and the earlier
// migration's column and triggers come back, counted again from the plots.
const DOWN: &str = r#"
DROP TRIGGER IF EXISTS property_tally_delete ON property;
DROP TRIGGER IF EXISTS property_tally_update ON property;
DROP TRIGGER IF EXISTS property_tally_insert ON property;
DROP FUNCTION IF EXISTS plot_tally_plot_changed();
DROP FUNCTION IF EXISTS plot_tally_changed();
DROP FUNCTION IF EXISTS plot_tally_add(uuid[], text[], uuid[], text[]);
DROP TABLE IF EXISTS plot_tally;
"#;

pub const MIGRATION: SqlMigration = SqlMigration {
    name: "m20261126_000002_plot_tally",
    up: UP,
    down: &[DOWN, super::m20261126_000001_plot_count::UP],
};
