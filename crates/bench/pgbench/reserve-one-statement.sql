-- The limit of `just bench`'s reserve ratio: the best one-statement SQL for the
-- work of reserving a free plot, one round trip in autocommit. It checks that
-- the caller is an active user of an active workspace, locks the plot (story
-- 2.5's pessimistic lock), with a per-agent limit locks the agent and counts
-- their active holds, inserts the reservation and marks the plot RESERVED; and
-- answers one row that says what happened and why (`outcome`, with the plot's
-- status and end, the holds counted and the limit), as the server's error
-- codes do. Written against migrations/src/m20261121_000001_core.rs, for
-- `pgbench -M prepared` (or extended): pgbench sends each :name as an untyped
-- parameter. The domain's order of checks is kept: caller, plot, the limit.
--
-- What one statement leaves out: a RESERVED plot whose hold has lapsed is a
-- takeover (end the old hold, then reserve), which stays with the full
-- transaction: the statement answers TAKEOVER and changes nothing.
--
-- The per-agent limit under concurrent reserves by one agent: every reserve
-- with a limit locks the agent's row (after the plot, so two reserves never
-- wait on each other in opposite orders) before it counts, and keeps the lock
-- until it commits, so counts of one agent follow one another. But a whole
-- statement reads one snapshot, taken when it began: a `count(*)` written in
-- the statement would, after waiting for the lock, still miss the hold that
-- the reserve it waited for has just committed, and two reserves at limit - 1
-- would both insert. So the count is `bench_active_holds(agent)`, a VOLATILE
-- SQL function (`holdfast-bench pgbench-prepare` makes it): PostgreSQL gives
-- each query inside a volatile function a fresh snapshot, taken here after the
-- lock is held, which sees every hold committed before it. It is called only
-- on the row of the `agent` CTE, which comes out of the lock, so never before
-- it. The smoke test races reserves of one agent at the limit to prove it (and
-- a plain count, tried by hand, let an agent at a limit of 2 take 3 holds).
-- With no limit (max_active = 0, as the server runs in the bench) neither the
-- lock nor the count is made, as in the server.
--
-- The variable parts are named in `input`, the first CTE; the rest is the
-- statement. To measure another statement (the server's one-round-trip
-- reserve, say `SELECT * FROM reserve(...)`), copy this file, keep `input`
-- and the \set line, and point `BENCH_LIMIT_SCRIPT` at the copy. pgbench's
-- variables (-D): ws (workspace id), agents (number of agents to draw from),
-- ttl_secs (hold time in seconds), max_active (per-agent limit, 0 = none).
-- Where the server gets ids from its client, pgbench looks them up in the
-- helper tables `holdfast-bench pgbench-prepare` makes: bench_plot holds the
-- plots in a random order, drawn once each through bench_plot_seq, as the
-- spread scenario draws them; the reservation id is a UUIDv7-shaped value,
-- like the server's, so the index sees the same insertion order.
\set agent random(1, :agents)
WITH input AS MATERIALIZED (
  SELECT :ws::uuid AS workspace_id,
         (SELECT user_id FROM bench_agent WHERE n = :agent) AS caller_id,
         (SELECT property_id FROM bench_plot WHERE n = (SELECT nextval('bench_plot_seq'))) AS property_id,
         (lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') || '7'
          || substr(md5(random()::text), 1, 19))::uuid AS reservation_id,
         make_interval(secs => :ttl_secs) AS ttl,
         :max_active::int AS max_active),
-- Lock the plot (the pessimistic lock) and read whether the caller
-- may act, in one join, as the server's first statement does. After a wait,
-- PostgreSQL rereads the plot as its last writer left it, so a plot just
-- taken reads RESERVED. No row: the plot or the caller is missing (the
-- answer below says which).
lock AS MATERIALIZED (
  SELECT p.id, p.status, p.reserved_until, u.active AND w.status = 'ACTIVE' AS caller_ok
  FROM input i
  JOIN property p ON p.id = i.property_id AND p.workspace_id = i.workspace_id
  JOIN app_user u ON u.id = i.caller_id AND u.workspace_id = i.workspace_id
  JOIN workspace w ON w.id = i.workspace_id
  FOR UPDATE OF p),
-- With a limit, for a caller who may act on a free plot: lock the agent
-- against their own concurrent reserves, after the plot (this reads the
-- plot's lock). NO KEY UPDATE: the reservation's foreign key only shares it.
agent AS MATERIALIZED (
  SELECT u.id
  FROM input i
  JOIN lock l ON l.caller_ok AND l.status = 'AVAILABLE'
  JOIN app_user u ON u.id = i.caller_id
  WHERE i.max_active > 0
  FOR NO KEY UPDATE OF u),
-- What the decision needs, read once the locks are held: the agent's holds
-- counted under their lock (a fresh snapshot, see above), and the clock.
decision AS MATERIALIZED (
  SELECT i.*, l.id IS NOT NULL AS locked, l.caller_ok, l.status, l.reserved_until,
         CASE WHEN i.max_active > 0 THEN (SELECT bench_active_holds(a.id) FROM agent a) END AS held,
         clock_timestamp() AS now
  FROM input i LEFT JOIN lock l ON true),
created AS (
  INSERT INTO reservation (id, workspace_id, property_id, agent_id, status, created_at, expires_at)
  SELECT d.reservation_id, d.workspace_id, d.property_id, d.caller_id, 'ACTIVE', d.now, d.now + d.ttl
  FROM decision d
  WHERE d.locked AND d.caller_ok AND d.status = 'AVAILABLE'
    AND (d.max_active <= 0 OR d.held < d.max_active)
  RETURNING *),
marked AS (
  UPDATE property SET status = 'RESERVED', reserved_by_id = created.agent_id,
    reserved_until = created.expires_at, updated_at = created.created_at
  FROM created WHERE property.id = created.property_id)
-- The answer, in the domain's order of checks; why not is looked up only
-- when there is no lock row (the domain's check_caller).
SELECT CASE
         WHEN r.id IS NOT NULL THEN 'RESERVED'
         WHEN NOT d.locked OR NOT d.caller_ok THEN (
           SELECT CASE WHEN NOT coalesce(u.active, false) THEN 'UNAUTHENTICATED'
                       WHEN w.status <> 'ACTIVE' THEN 'FORBIDDEN'
                       ELSE 'NOT_FOUND' END
           FROM (SELECT) AS one
           LEFT JOIN app_user u ON u.id = d.caller_id AND u.workspace_id = d.workspace_id
           LEFT JOIN workspace w ON w.id = d.workspace_id)
         WHEN d.status = 'SOLD' OR d.reserved_until > d.now THEN 'PROPERTY_UNAVAILABLE'
         WHEN d.status = 'RESERVED' THEN 'TAKEOVER'
         ELSE 'RESERVATION_LIMIT_REACHED'
       END AS outcome,
       d.status AS property_status, d.reserved_until, d.held, d.max_active,
       r.id AS reservation_id, r.property_id, r.agent_id, r.created_at, r.expires_at
FROM decision d LEFT JOIN created r ON true;
