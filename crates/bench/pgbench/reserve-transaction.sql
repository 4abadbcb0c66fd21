-- The reserve transaction the server ran until the hold rules moved into SQL
-- functions (`reserve` with no per-agent limit, HOLDFAST_MAX_ACTIVE_PER_AGENT=0),
-- statement for statement, for `pgbench -M prepared`; `just bench` runs it
-- beside the one-statement limit (reserve-one-statement.sql) for continuity
-- with the earlier figures: lock the plot and check the caller
-- (an active user of an active workspace) in one statement, check the plot,
-- insert the reservation and mark the plot RESERVED in one statement, commit.
-- Where the server gets ids from its client, pgbench looks them up in the
-- helper tables `holdfast-bench pgbench-prepare` makes (bench_plot holds the
-- plots in a random order, drawn once each through bench_plot_seq, as the
-- spread scenario draws them); the reservation id is a UUIDv7-shaped value,
-- like the server's, so the index sees the same insertion order.
-- Variables: -D ws=<workspace id> -D agents=<number of agents>
-- -D ttl_secs=<hold time in seconds>.
\set agent random(1, :agents)
BEGIN;
SELECT p.id AS pid, p.project_id, p.status, p.reserved_until, u.active AND w.status = 'ACTIVE' AS caller_ok,
       (p.status = 'AVAILABLE' AND u.active AND w.status = 'ACTIVE')::int AS available
  FROM property p, app_user u, workspace w
  WHERE p.id = (SELECT property_id FROM bench_plot WHERE n = (SELECT nextval('bench_plot_seq')))
    AND p.workspace_id = :ws::uuid
    AND u.id = (SELECT user_id FROM bench_agent WHERE n = :agent) AND u.workspace_id = :ws::uuid AND w.id = :ws::uuid
  FOR UPDATE OF p \gset
\if :available
WITH t AS (SELECT clock_timestamp() AS now),
  created AS (
    INSERT INTO reservation (id, workspace_id, property_id, agent_id, status, created_at, expires_at)
    SELECT (lpad(to_hex((extract(epoch FROM t.now) * 1000)::bigint), 12, '0') || '7'
            || substr(md5(random()::text), 1, 19))::uuid,
           :ws::uuid, :pid::uuid, (SELECT user_id FROM bench_agent WHERE n = :agent),
           'ACTIVE', t.now, t.now + make_interval(secs => :ttl_secs) FROM t
    RETURNING *),
  held AS (
    UPDATE property SET status = 'RESERVED', reserved_by_id = created.agent_id,
      reserved_until = created.expires_at, updated_at = created.created_at
    FROM created WHERE property.id = created.property_id)
SELECT * FROM created;
\endif
COMMIT;
