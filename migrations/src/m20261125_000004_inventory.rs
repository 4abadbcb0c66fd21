//! Running an inventory without SQL: a plot's price (and the price a hold
//! keeps from when it began), plots taken off the market (WITHDRAWN), and
//! codes unique per project without regard to case.
//!
//! Codes that already clash without regard to case ("A-1" and "a-1" in one
//! project) are not refused here: every such row but the oldest of its
//! group is marked `code_grandfathered`, named in a NOTICE, and left out of
//! the case-insensitive unique index, so existing data stays valid while a
//! new code, or a changed one, that clashes with any code of its project is
//! refused (the oldest of each group stands in the index for the group;
//! when its code changes, the next oldest takes its place).

use crate::SqlMigration;

pub const UP: &str = r#"
ALTER TABLE property
    ADD COLUMN price numeric(14, 2) CONSTRAINT chk_property_price_not_negative CHECK (price >= 0),
    ADD COLUMN code_grandfathered boolean NOT NULL DEFAULT false,
    DROP CONSTRAINT property_status_check,
    ADD CONSTRAINT property_status_check
        CHECK (status IN ('AVAILABLE', 'RESERVED', 'SOLD', 'WITHDRAWN'));

-- When the plot's price last changed (set, changed or taken away): a hold
-- begun since then must have kept that price, which the audit checks.
ALTER TABLE property ADD COLUMN priced_at timestamptz;
CREATE FUNCTION property_priced_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW.priced_at := CASE WHEN NEW.price IS NULL THEN NULL ELSE clock_timestamp() END;
  ELSIF NEW.price IS DISTINCT FROM OLD.price THEN
    NEW.priced_at := clock_timestamp();
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER property_priced_at BEFORE INSERT OR UPDATE OF price ON property
    FOR EACH ROW EXECUTE FUNCTION property_priced_at();

-- The price the plot had when the hold began: a later change of the plot's
-- price leaves it as it was.
ALTER TABLE reservation
    ADD COLUMN price_at_reservation numeric(14, 2)
        CONSTRAINT chk_reservation_price_not_negative CHECK (price_at_reservation >= 0);

DO $$
DECLARE
  v_clash record;
BEGIN
  FOR v_clash IN
    SELECT project_id, lower(code) AS code, string_agg(format('%L (%s)', code, id), ', ' ORDER BY id) AS rows
      FROM property
     GROUP BY project_id, lower(code)
    HAVING count(*) > 1
  LOOP
    RAISE NOTICE 'project %: codes that differ only in case are kept as they are (grandfathered): %',
      v_clash.project_id, v_clash.rows;
  END LOOP;
  UPDATE property p SET code_grandfathered = true
   WHERE EXISTS (SELECT 1 FROM property o
                  WHERE o.project_id = p.project_id AND lower(o.code) = lower(p.code) AND o.id < p.id);
END
$$;

-- Codes are unique per project without regard to case, for every code but
-- the grandfathered ones above.
CREATE UNIQUE INDEX property_code_unique_per_project_ci ON property (project_id, lower(code))
    WHERE NOT code_grandfathered;
"#;

const DOWN: &str = r#"
DROP INDEX IF EXISTS property_code_unique_per_project_ci;
DROP TRIGGER IF EXISTS property_priced_at ON property;
DROP FUNCTION IF EXISTS property_priced_at();
ALTER TABLE reservation DROP COLUMN IF EXISTS price_at_reservation;
ALTER TABLE property
    DROP CONSTRAINT IF EXISTS property_status_check,
    ADD CONSTRAINT property_status_check CHECK (status IN ('AVAILABLE', 'RESERVED', 'SOLD')),
    DROP COLUMN IF EXISTS code_grandfathered,
    DROP COLUMN IF EXISTS priced_at,
    DROP COLUMN IF EXISTS price;
"#;

pub const MIGRATION: SqlMigration = SqlMigration {
    name: "m20261125_000004_inventory",
    up: UP,
    down: &[DOWN],
};
