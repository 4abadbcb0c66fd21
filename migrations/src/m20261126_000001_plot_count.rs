//! Each project keeps how many plots it has (`project.plot_count`), kept by
//! triggers on `property` in the transaction that adds or removes plots.
//! The board's counts read it instead of counting every plot of a project:
//! the plots not AVAILABLE are counted from the index, and the AVAILABLE
//! ones are the rest. A reserve or a release changes a plot's status, never
//! how many plots a project has, so the count is never written on the
//! reserve path: no row that every reserve of a project would queue on.
//! Plots are added by one statement per import (a statement-level trigger:
//! one update of the project per statement, however many rows).

use crate::SqlMigration;

pub const UP: &str = r#"
ALTER TABLE project ADD COLUMN plot_count bigint NOT NULL DEFAULT 0
    CONSTRAINT project_plot_count_not_negative CHECK (plot_count >= 0);
UPDATE project pr SET plot_count = (SELECT count(*) FROM property p WHERE p.project_id = pr.id);

CREATE FUNCTION project_plots_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE project pr SET plot_count = pr.plot_count + n.n
    FROM (SELECT project_id, count(*) AS n FROM added GROUP BY project_id) n
   WHERE pr.id = n.project_id;
  RETURN NULL;
END
$$;

CREATE FUNCTION project_plots_removed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE project pr SET plot_count = pr.plot_count - n.n
    FROM (SELECT project_id, count(*) AS n FROM removed GROUP BY project_id) n
   WHERE pr.id = n.project_id;
  RETURN NULL;
END
$$;

-- A plot never moves to another project (nothing updates property.project_id);
-- if one ever did, this keeps both counts right. It fires only for an UPDATE
-- that names project_id, so a change of status (every reserve) never runs it.
CREATE FUNCTION project_plot_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.project_id IS DISTINCT FROM NEW.project_id THEN
    UPDATE project SET plot_count = plot_count - 1 WHERE id = OLD.project_id;
    UPDATE project SET plot_count = plot_count + 1 WHERE id = NEW.project_id;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER property_plots_added AFTER INSERT ON property
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION project_plots_added();
CREATE TRIGGER property_plots_removed AFTER DELETE ON property
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION project_plots_removed();
CREATE TRIGGER property_plot_moved AFTER UPDATE OF project_id ON property
    FOR EACH ROW EXECUTE FUNCTION project_plot_moved();
"#;

const DOWN: &str = r#"
DROP TRIGGER IF EXISTS property_plot_moved ON property;
DROP TRIGGER IF EXISTS property_plots_removed ON property;
DROP TRIGGER IF EXISTS property_plots_added ON property;
DROP FUNCTION IF EXISTS project_plot_moved();
DROP FUNCTION IF EXISTS project_plots_removed();
DROP FUNCTION IF EXISTS project_plots_added();
ALTER TABLE project DROP COLUMN IF EXISTS plot_count;
"#;

pub const MIGRATION: SqlMigration = SqlMigration {
    name: "m20261126_000001_plot_count",
    up: UP,
    down: &[DOWN],
};
