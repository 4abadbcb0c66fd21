-- The hold rules of holdfast, each written once: what "now" is, when a hold has
-- lapsed, how a hold begins and how it ends (and the line behind it moves), and
-- the reads "as of now".
--
-- The tables and their safety nets (the unique partial indexes, the checks) live
-- in the versioned migrations beside this file; the rules that act on them live
-- here. `holdfast-server migrate` installs this file after the migrations, every
-- time, as one transaction that drops the schema `rules` and makes it again:
-- change a rule here, run migrate, and every server and worker uses it from their
-- next call. Nothing outside the schema may depend on what is in it.
--
-- Every function that changes a hold or a line takes the property's row lock
-- first (FOR UPDATE): everything that touches a plot is serialised on that row.
-- Then the rows of those plots and of agents: a call that begins a hold locks
-- its agent's row (to count the agent's holds) before it writes reservations;
-- a call that ends holds locks their reservations and their lines' entries
-- before the row of the next in line it hands a plot to. Last, at the commit,
-- the project's tally rows (plot_tally, written by deferred triggers; a
-- sweep's batch locks its tally rows in their order as its last step). Two
-- pairs of calls can meet the other way round: two calls that each lock their
-- caller's row and, handing a lapsed plot on, the next in line's; and a
-- reserve that frees an expired idempotency key (locking that key's old
-- reservation after its caller's row) against the end of that old hold when
-- the same transaction hands another plot to the same agent (a sweep's
-- batch). PostgreSQL detects either, and one of the two answers BUSY: safe to
-- retry (a sweep's batch is tried again at its next tick).
--
-- The functions that write answer one jsonb object: "outcome" (what happened, for
-- the caller), the fields that outcome needs, and the effects that were committed,
-- for the work after the commit (delayed jobs, live events, metrics):
--   "ended":    holds this call ended,
--   "started":  holds this call began (a hold from the line names its entry),
--   "extended": holds this call extended,
--   "warned":   holds whose agent is warned now that the end is near,
-- each a list of reservation rows with their property's "project_id" and
-- "property_code"; and
--   "entries":  queue entries whose status this call set, as they are now.

DROP VIEW IF EXISTS public.property_now;
DROP VIEW IF EXISTS public.reservation_now;
DROP SCHEMA IF EXISTS rules CASCADE;
CREATE SCHEMA rules;

-- "Now", from the database's clock, so that servers, workers and the sweep never
-- disagree about what has lapsed. A read-only transaction (a GraphQL query reads
-- in one) judges every row at the moment it began, now(): one answer is one
-- moment. A write judges at the moment it runs, clock_timestamp(), which comes
-- after any wait for a row lock: a hold that lapsed while the write waited counts
-- as lapsed, and a new hold never begins before the one it follows ended.
CREATE FUNCTION rules.now() RETURNS timestamptz
LANGUAGE sql VOLATILE AS $$
  SELECT CASE WHEN current_setting('transaction_read_only')::boolean THEN now()
              ELSE clock_timestamp() END
$$;

-- The one definition of a lapsed hold: its end has come. A write passes the
-- moment it judges at (taken once, after its locks); reads use rules.now().
CREATE FUNCTION rules.lapsed(p_ends_at timestamptz, p_at timestamptz DEFAULT rules.now())
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT p_ends_at <= p_at
$$;

-- Properties as of now: a lapsed hold reads AVAILABLE, with no holder, whether
-- or not its release job or the sweep has run yet; unless somebody waits in
-- line for the plot, which is then the line's (the next in line's hold begins
-- when the job, the sweep or a call ends the lapsed one, within moments): it
-- reads RESERVED, with the lapsed hold's holder and end, never AVAILABLE.
CREATE FUNCTION rules.line_waits(p_property uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM queue_entry e
                 WHERE e.property_id = p_property AND e.status = 'WAITING')
$$;

CREATE VIEW rules.property_now AS
SELECT p.id, p.workspace_id, p.project_id, p.code,
       CASE WHEN l.lapsed THEN 'AVAILABLE' ELSE p.status END AS status,
       CASE WHEN l.lapsed THEN NULL ELSE p.reserved_by_id END AS reserved_by_id,
       CASE WHEN l.lapsed THEN NULL ELSE p.reserved_until END AS reserved_until,
       p.updated_at, p.price
FROM property p
CROSS JOIN LATERAL (
  SELECT p.status = 'RESERVED' AND rules.lapsed(p.reserved_until)
         AND NOT rules.line_waits(p.id) AS lapsed) l;

-- A workspace's projects' plots counted by status as property_now reads
-- them, without reading every plot: the versioned migrations keep each
-- project's plots counted by status in plot_tally (in shards, written by
-- deferred triggers as the transaction that changes the plots commits; a
-- project's counts are the sums of its shards). Only the lapsed RESERVED
-- plots nobody waits for (few: the job and the sweep end them within
-- moments) move from RESERVED to AVAILABLE, found through the index on
-- (project_id, status, reserved_until).
-- Projects of another workspace count nothing.
CREATE FUNCTION rules.plot_counts(p_workspace uuid, p_projects uuid[])
RETURNS TABLE (project_id uuid, total bigint, available bigint, reserved bigint,
               sold bigint, withdrawn bigint)
LANGUAGE sql STABLE AS $$
  WITH mine AS (
    SELECT id FROM project WHERE workspace_id = p_workspace AND id = ANY (p_projects)
  ), tally AS (
    SELECT t.project_id, sum(t.plots) AS plots, sum(t.reserved) AS reserved,
           sum(t.sold) AS sold, sum(t.withdrawn) AS withdrawn
    FROM plot_tally t
    WHERE t.project_id IN (SELECT id FROM mine)
    GROUP BY t.project_id
  ), lapsed AS (
    -- "Now" as a sub-select, evaluated once before the scan, so that the
    -- lapse is a bound of the index scan and the line is looked up only for
    -- the lapsed holds.
    SELECT p.project_id, count(*) AS n
    FROM property p
    WHERE p.project_id IN (SELECT id FROM mine) AND p.status = 'RESERVED'
      AND rules.lapsed(p.reserved_until, (SELECT rules.now())) AND NOT rules.line_waits(p.id)
    GROUP BY p.project_id
  )
  SELECT m.id,
         coalesce(t.plots, 0)::bigint,
         (coalesce(t.plots - t.reserved - t.sold - t.withdrawn, 0) + coalesce(l.n, 0))::bigint,
         (coalesce(t.reserved, 0) - coalesce(l.n, 0))::bigint,
         coalesce(t.sold, 0)::bigint,
         coalesce(t.withdrawn, 0)::bigint
  FROM mine m
  LEFT JOIN tally t ON t.project_id = m.id
  LEFT JOIN lapsed l ON l.project_id = m.id
$$;

-- Reservations as of now: an ACTIVE reservation past its end reads EXPIRED.
CREATE VIEW rules.reservation_now AS
SELECT r.id, r.workspace_id, r.property_id, r.agent_id,
       CASE WHEN r.status = 'ACTIVE' AND rules.lapsed(r.expires_at) THEN 'EXPIRED' ELSE r.status END AS status,
       r.created_at, r.expires_at, r.ended_at, r.ended_by_id, r.end_source,
       r.extension_count, r.version, r.buyer_name, r.buyer_phone, r.buyer_email, r.note,
       r.idempotency_key, r.warned_version, r.queue_entry_id, r.price_at_reservation
FROM reservation r;

-- A time-ordered id (UUIDv7, as the application makes them), for rows made here.
CREATE FUNCTION rules.uuid7() RETURNS uuid
LANGUAGE sql VOLATILE AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      52, 1), 53, 1),
    'hex')::uuid
$$;

-- The holds an agent has at `at`, for the per-agent limit. The caller holds the
-- agent's row lock, so two calls for one agent count one after the other.
-- Every reserve under a limit counts: PL/pgSQL, through the index on the
-- agent's active holds, for the reasons given at holds_json below.
CREATE FUNCTION rules.holds_of(p_agent uuid, p_at timestamptz) RETURNS bigint
LANGUAGE plpgsql STABLE SET enable_seqscan = off AS $$
BEGIN
  RETURN (SELECT count(*) FROM reservation r
          WHERE r.agent_id = p_agent AND r.status = 'ACTIVE' AND NOT rules.lapsed(r.expires_at, p_at));
END
$$;

-- Whether a user may act: 'ok', or why not ('gone', 'deactivated', 'suspended').
CREATE FUNCTION rules.standing(p_workspace uuid, p_user uuid) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT COALESCE(
    (SELECT CASE WHEN NOT u.active THEN 'deactivated'
                 WHEN w.status <> 'ACTIVE' THEN 'suspended'
                 ELSE 'ok' END
     FROM app_user u JOIN workspace w ON w.id = u.workspace_id
     WHERE u.id = p_user AND u.workspace_id = p_workspace),
    'gone')
$$;

-- Reservations as they read now, each with its property's project, code and
-- price. Prices go as text, the exact decimal (a JSON number would be read
-- as a float).
--
-- The functions every write calls for its answer (this one, entries_json and
-- effects) are PL/pgSQL, not SQL, and read one row by its id when there is
-- one. PostgreSQL plans the body of a SQL function it cannot inline anew in
-- every transaction, and PL/pgSQL plans a query on an array of ids anew on
-- every call (a custom plan), about 0.1-1 ms for this join through the view;
-- a query on one id gets one plan, kept for the session. That plan must not
-- depend on how big the table was when it was made: a session that made it
-- while `reservation` held a page or two (a new deployment, or the bench,
-- which empties the table before each run) would keep a sequential scan
-- while the table grows, until the next ANALYZE. These lookups by primary
-- key are always best done through the key's index, so they never scan
-- (`enable_seqscan = off` for their own queries). Measured with pgbench
-- running the server's reserve statement: 2,180-2,990 reserves a second
-- with the answer read by an array query, 3,940-4,550 with this.
CREATE FUNCTION rules.holds_json(p_ids uuid[]) RETURNS jsonb
LANGUAGE plpgsql STABLE SET enable_seqscan = off AS $$
BEGIN
  IF cardinality(p_ids) = 1 THEN
    RETURN COALESCE((
      SELECT jsonb_build_array(to_jsonb(r) || jsonb_build_object('project_id', p.project_id,
                                                                 'property_code', p.code,
                                                                 'property_price', p.price::text,
                                                                 'price_at_reservation',
                                                                 r.price_at_reservation::text))
      FROM rules.reservation_now r JOIN property p ON p.id = r.property_id
      WHERE r.id = p_ids[1]), '[]'::jsonb);
  END IF;
  RETURN (
    SELECT COALESCE(jsonb_agg(to_jsonb(r) || jsonb_build_object('project_id', p.project_id,
                                                                'property_code', p.code,
                                                                'property_price', p.price::text,
                                                                'price_at_reservation',
                                                                r.price_at_reservation::text)
                              ORDER BY array_position(p_ids, r.id)), '[]'::jsonb)
    FROM rules.reservation_now r JOIN property p ON p.id = r.property_id
    WHERE r.id = ANY (p_ids));
END
$$;

-- Queue entries as they are now (planned as holds_json is).
CREATE FUNCTION rules.entries_json(p_ids uuid[]) RETURNS jsonb
LANGUAGE plpgsql STABLE SET enable_seqscan = off AS $$
BEGIN
  IF cardinality(p_ids) = 1 THEN
    RETURN COALESCE((SELECT jsonb_build_array(to_jsonb(e)) FROM queue_entry e
                      WHERE e.id = p_ids[1]), '[]'::jsonb);
  END IF;
  RETURN (
    SELECT COALESCE(jsonb_agg(to_jsonb(e) ORDER BY array_position(p_ids, e.id)), '[]'::jsonb)
    FROM queue_entry e WHERE e.id = ANY (p_ids));
END
$$;

-- What a call did to holds and lines, as its answer carries it (see above).
CREATE TYPE rules.done AS (ended uuid[], started uuid[], extended uuid[], entries uuid[]);

-- A list of no ids reads nothing: most answers name one hold and no entry.
CREATE FUNCTION rules.effects(p_done rules.done) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN jsonb_build_object(
    'ended', CASE WHEN cardinality(p_done.ended) > 0 THEN rules.holds_json(p_done.ended)
                  ELSE '[]'::jsonb END,
    'started', CASE WHEN cardinality(p_done.started) > 0 THEN rules.holds_json(p_done.started)
                    ELSE '[]'::jsonb END,
    'extended', CASE WHEN cardinality(p_done.extended) > 0 THEN rules.holds_json(p_done.extended)
                     ELSE '[]'::jsonb END,
    'entries', CASE WHEN cardinality(p_done.entries) > 0 THEN rules.entries_json(p_done.entries)
                    ELSE '[]'::jsonb END);
END
$$;

-- Who a hold or a place in line is for, as the functions that make them take it.
CREATE TYPE rules.buyer AS (name text, phone text, email text);

-- Begins a hold of the locked, free property for `agent` until `at + ttl`, for
-- `buyer` (may be NULL) with `note`, made by a call with idempotency key `key`
-- or from queue entry `entry` (either may be NULL): the reservation row, which
-- keeps the property's price as it is now (a later change of the price leaves
-- it alone), and the property's new state. Returns the reservation's id.
CREATE FUNCTION rules.begin_hold(p_workspace uuid, p_property uuid, p_agent uuid,
                                 p_at timestamptz, p_ttl interval, p_buyer rules.buyer,
                                 p_note text, p_key text, p_entry uuid) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
  v_id uuid := rules.uuid7();
BEGIN
  INSERT INTO reservation (id, workspace_id, property_id, agent_id, status, created_at, expires_at,
                           buyer_name, buyer_phone, buyer_email, note, idempotency_key, queue_entry_id,
                           price_at_reservation)
  VALUES (v_id, p_workspace, p_property, p_agent, 'ACTIVE', p_at, p_at + p_ttl,
          p_buyer.name, p_buyer.phone, p_buyer.email, p_note, p_key, p_entry,
          (SELECT price FROM property WHERE id = p_property));
  UPDATE property
     SET status = 'RESERVED', reserved_by_id = p_agent, reserved_until = p_at + p_ttl, updated_at = p_at
   WHERE id = p_property;
  RETURN v_id;
END
$$;

-- Whether `agent` may take a hold at `at`: an active user, holding fewer than
-- `max_active` (0: no limit). Locks the agent's row, so that the count stands
-- until the caller commits.
CREATE FUNCTION rules.can_hold(p_agent uuid, p_at timestamptz, p_max_active integer)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  v_active boolean;
BEGIN
  SELECT active INTO v_active FROM app_user WHERE id = p_agent FOR NO KEY UPDATE;
  RETURN v_active AND (p_max_active <= 0 OR rules.holds_of(p_agent, p_at) < p_max_active);
END
$$;

-- Hands the locked, just freed property to the first waiting entry whose agent
-- can hold, at `at`, for `ttl`: its hold begins, the entry is PROMOTED; entries
-- passed over (an agent deactivated, or at the limit) are SKIPPED. Adds what it
-- did to `done`.
CREATE FUNCTION rules.promote(p_property uuid, p_at timestamptz, p_ttl interval,
                              p_max_active integer, INOUT p_done rules.done)
LANGUAGE plpgsql AS $$
DECLARE
  v_entry queue_entry;
  v_hold uuid;
BEGIN
  FOR v_entry IN
    SELECT * FROM queue_entry
     WHERE property_id = p_property AND status = 'WAITING'
     ORDER BY created_at, id
       FOR UPDATE
  LOOP
    p_done.entries := p_done.entries || v_entry.id;
    IF NOT rules.can_hold(v_entry.agent_id, p_at, p_max_active) THEN
      UPDATE queue_entry SET status = 'SKIPPED', ended_at = p_at WHERE id = v_entry.id;
      CONTINUE;
    END IF;
    v_hold := rules.begin_hold(v_entry.workspace_id, p_property, v_entry.agent_id, p_at, p_ttl,
                               ROW(v_entry.buyer_name, v_entry.buyer_phone, v_entry.buyer_email),
                               NULL, NULL, v_entry.id);
    UPDATE queue_entry SET status = 'PROMOTED', ended_at = p_at, reservation_id = v_hold
     WHERE id = v_entry.id;
    p_done.started := p_done.started || v_hold;
    RETURN;
  END LOOP;
END
$$;

-- Ends ACTIVE holds: the one path by which every hold ends, released or
-- converted by a person, or expired by its job, the sweep or a takeover. The
-- caller holds the properties' row locks. Holds in `holds` that are no longer
-- ACTIVE are left alone. A conversion sells the plot and closes its line; any
-- other end hands the plot to the next in line who can hold (rules.promote,
-- with the hold time `ttl` and the per-agent limit `max_active`), in this same
-- transaction, so the plot never reads AVAILABLE while anyone waits; if nobody
-- can, it is AVAILABLE. Adds what it did to `done`.
--
-- Set-based, so that a batch of the sweep ends its thousand holds in one
-- statement and looks for lines in one more, rather than a thousand of each:
-- one hold, from a person, a job or a takeover, goes the same way as a list
-- of one. The plots are handed on in the order of their ids.
CREATE FUNCTION rules.end_holds(p_holds uuid[], p_status text, p_source text, p_by uuid,
                                p_at timestamptz, p_ttl interval, p_max_active integer,
                                INOUT p_done rules.done)
LANGUAGE plpgsql AS $$
DECLARE
  v_ended uuid[];
  v_plots uuid[];
  v_plot uuid;
BEGIN
  WITH ended AS (
    UPDATE reservation
       SET status = p_status, ended_at = p_at, ended_by_id = p_by, end_source = p_source
     WHERE id = ANY (p_holds) AND status = 'ACTIVE'
    RETURNING id, property_id),
  freed AS (
    UPDATE property p
       SET reserved_by_id = NULL, reserved_until = NULL, updated_at = p_at,
           status = CASE WHEN p_status = 'CONVERTED' THEN 'SOLD' ELSE 'AVAILABLE' END
      FROM ended WHERE p.id = ended.property_id)
  SELECT array_agg(id), array_agg(property_id) INTO v_ended, v_plots FROM ended;
  IF v_ended IS NULL THEN
    RETURN;
  END IF;
  p_done.ended := p_done.ended || v_ended;
  IF p_status = 'CONVERTED' THEN
    p_done := rules.close_lines(v_plots, p_at, p_done);
    RETURN;
  END IF;
  FOR v_plot IN
    SELECT DISTINCT property_id FROM queue_entry
     WHERE property_id = ANY (v_plots) AND status = 'WAITING'
     ORDER BY property_id
  LOOP
    p_done := rules.promote(v_plot, p_at, p_ttl, p_max_active, p_done);
  END LOOP;
END
$$;

-- Ends the lines of plots that were sold (or withdrawn): every waiting entry
-- is CLOSED. Adds them to `done`.
CREATE FUNCTION rules.close_lines(p_properties uuid[], p_at timestamptz, p_done rules.done)
RETURNS rules.done LANGUAGE plpgsql AS $$
DECLARE
  v_closed uuid[];
BEGIN
  WITH closed AS (
    UPDATE queue_entry SET status = 'CLOSED', ended_at = p_at
     WHERE property_id = ANY (p_properties) AND status = 'WAITING'
    RETURNING id)
  SELECT COALESCE(array_agg(id), '{}') INTO v_closed FROM closed;
  p_done.entries := p_done.entries || v_closed;
  RETURN p_done;
END
$$;

-- The refusal of a call on a hold that no longer holds at `p_at`, with its
-- status as of then (a lapsed hold not yet recorded already reads EXPIRED);
-- NULL while it still holds.
CREATE FUNCTION rules.no_longer_holds(p_hold reservation, p_at timestamptz) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN p_hold.status <> 'ACTIVE' OR rules.lapsed(p_hold.expires_at, p_at)
    THEN jsonb_build_object('outcome', 'not_active',
                            'status', CASE WHEN p_hold.status = 'ACTIVE' THEN 'EXPIRED'
                                           ELSE p_hold.status END)
  END
$$;

-- Locks the property of a reservation of the workspace, then reads the
-- reservation: how release, convert, extend and the delayed jobs start.
CREATE FUNCTION rules.lock_hold(p_workspace uuid, p_hold uuid) RETURNS SETOF reservation
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM property p
   WHERE p.id = (SELECT r.property_id FROM reservation r
                 WHERE r.id = p_hold AND r.workspace_id = p_workspace)
     FOR UPDATE;
  IF FOUND THEN
    RETURN QUERY SELECT * FROM reservation WHERE id = p_hold;
  END IF;
END
$$;

-- Locks a property of the workspace, and with it the caller's row when holds
-- are counted (`count_holds`), so that two calls of one agent count one after
-- the other; reads whether the caller may act, in the same statement: the
-- property's row, with `caller_ok`, and whether its project is archived. No
-- row: the property or the caller is missing.
CREATE FUNCTION rules.lock_property(p_workspace uuid, p_agent uuid, p_property uuid,
                                    p_count_holds boolean)
RETURNS TABLE (status text, reserved_by_id uuid, reserved_until timestamptz, caller_ok boolean,
               archived boolean)
LANGUAGE plpgsql AS $$
BEGIN
  IF p_count_holds THEN
    RETURN QUERY
      SELECT p.status, p.reserved_by_id, p.reserved_until, u.active AND w.status = 'ACTIVE',
             (SELECT pr.archived FROM project pr WHERE pr.id = p.project_id)
        FROM property p, app_user u, workspace w
       WHERE p.id = p_property AND p.workspace_id = p_workspace
         AND u.id = p_agent AND u.workspace_id = p_workspace AND w.id = p_workspace
         FOR UPDATE OF p FOR NO KEY UPDATE OF u;
  ELSE
    RETURN QUERY
      SELECT p.status, p.reserved_by_id, p.reserved_until, u.active AND w.status = 'ACTIVE',
             (SELECT pr.archived FROM project pr WHERE pr.id = p.project_id)
        FROM property p, app_user u, workspace w
       WHERE p.id = p_property AND p.workspace_id = p_workspace
         AND u.id = p_agent AND u.workspace_id = p_workspace AND w.id = p_workspace
         FOR UPDATE OF p;
  END IF;
END
$$;

-- Why a call that found no locked row (or a refused caller) is refused: the
-- caller comes first, as it would have at the door.
CREATE FUNCTION rules.refusal(p_workspace uuid, p_agent uuid) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_standing text := rules.standing(p_workspace, p_agent);
BEGIN
  IF v_standing <> 'ok' THEN
    RETURN jsonb_build_object('outcome', 'refused', 'standing', v_standing);
  END IF;
  RETURN jsonb_build_object('outcome', 'not_found', 'what', 'property');
END
$$;

-- Why a plot of an archived project cannot be reserved or queued for: it
-- answers `unavailable` with the plot's status as it reads now. Holds begun
-- before the archive, and lines joined before it, run their course.
CREATE FUNCTION rules.archived_refusal(p_property uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('outcome', 'unavailable', 'status', n.status,
                            'reserved_until', n.reserved_until, 'archived', true)
    FROM rules.property_now n WHERE n.id = p_property
$$;

-- Takes over the lapsed hold of a locked plot, if it has one: ends it as
-- EXPIRED (and hands the plot to the line). Adds what it did to `done`.
CREATE FUNCTION rules.take_over(p_property uuid, p_at timestamptz, p_ttl interval,
                                p_max_active integer, INOUT p_done rules.done)
LANGUAGE plpgsql AS $$
DECLARE
  v_lapsed uuid;
BEGIN
  SELECT id INTO v_lapsed FROM reservation
   WHERE property_id = p_property AND status = 'ACTIVE' AND rules.lapsed(expires_at, p_at);
  IF FOUND THEN
    p_done := rules.end_holds(ARRAY[v_lapsed], 'EXPIRED', 'takeover', NULL, p_at, p_ttl,
                              p_max_active, p_done);
  END IF;
END
$$;

-- How long an idempotency key answers for the reservation its first call made;
-- after that the key is free for a new call.
CREATE FUNCTION rules.key_lifetime() RETURNS interval
LANGUAGE sql IMMUTABLE AS $$ SELECT interval '24 hours' $$;

-- How a call sent in one round trip runs: in autocommit, the statement is a
-- transaction of its own, which PostgreSQL commits as it ends, whatever
-- became of its client meanwhile. So such a call must not wait. The client
-- writes it `SELECT rules.<call> FROM rules.at_once(sent, late_after,
-- lock_wait)`, and this runs first: a call that arrives more than
-- `p_late_after` after `p_sent` (the client's clock: held up in a silent
-- link, its client long gone) is refused with SQLSTATE HF001, and the call
-- waits at most `p_lock_wait` for any row lock (lock_timeout for this
-- statement's transaction only; then SQLSTATE 55P03). Either way nothing
-- was written, and the client sends the call again in a transaction of its
-- own, whose commit is its to send.
CREATE FUNCTION rules.at_once(p_sent timestamptz, p_late_after double precision,
                              p_lock_wait double precision) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF clock_timestamp() > p_sent + make_interval(secs => p_late_after) THEN
    RAISE EXCEPTION 'a one-round-trip call sent at % arrived at %', p_sent, clock_timestamp()
      USING ERRCODE = 'HF001';
  END IF;
  PERFORM set_config('lock_timeout', ceil(p_lock_wait * 1000)::bigint || 'ms', true);
END
$$;

-- reserveProperty: reserves `p_property` for `p_agent` for `p_ttl`, for
-- `p_buyer` with `p_note`, if the agent may act (an active user of an active
-- workspace), the plot's project is not archived, the plot is free (not held,
-- sold or withdrawn), and the agent holds fewer than `p_max_active`
-- (0: no limit). A lapsed hold is taken over here (ended as EXPIRED); if
-- anyone waits in line the plot goes to the first of them who can hold, in
-- this call's transaction, and the caller gets it only if that is them.
-- A call with an idempotency key `p_key` that an earlier call of the agent used
-- within rules.key_lifetime() does not act again: it answers that call's
-- reservation, whatever its status now (the key with another property is
-- refused). The key is looked up under the plot's lock, so two concurrent
-- calls with one key run one after the other and make one reservation; the
-- unique index on (agent, key) refuses the same key on two plots at once.
-- Outcomes: reserved {reservation}, replayed {reservation}, refused
-- {standing}, not_found, key_reused, unavailable {status, reserved_until,
-- and archived when that is why}, limit.
CREATE FUNCTION rules.reserve(p_workspace uuid, p_agent uuid, p_property uuid,
                              p_ttl interval, p_max_active integer, p_buyer rules.buyer,
                              p_note text, p_key text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_plot record;
  v_now timestamptz;
  v_prior reservation;
  v_done rules.done := ROW('{}', '{}', '{}', '{}')::rules.done;
  v_hold uuid;
BEGIN
  SELECT * INTO v_plot FROM rules.lock_property(p_workspace, p_agent, p_property, p_max_active > 0);
  IF NOT FOUND OR NOT v_plot.caller_ok THEN
    RETURN rules.refusal(p_workspace, p_agent);
  END IF;

  v_now := rules.now();
  IF p_key IS NOT NULL THEN
    SELECT * INTO v_prior FROM reservation WHERE agent_id = p_agent AND idempotency_key = p_key;
    IF FOUND AND v_prior.created_at > v_now - rules.key_lifetime() THEN
      IF v_prior.property_id <> p_property THEN
        RETURN jsonb_build_object('outcome', 'key_reused');
      END IF;
      RETURN jsonb_build_object('outcome', 'replayed', 'reservation', v_prior.id,
                                'replayed', rules.holds_json(ARRAY[v_prior.id]));
    ELSIF FOUND THEN
      -- The key's day is over: it is free for this call. (This locks a row of
      -- another plot's history, which only the end of that old hold can be
      -- holding; if that end also hands a plot to this agent, as a sweep's
      -- batch may, the two meet the other way round and one answers BUSY.)
      UPDATE reservation SET idempotency_key = NULL WHERE id = v_prior.id;
    END IF;
  END IF;

  IF v_plot.archived THEN
    RETURN rules.archived_refusal(p_property);
  END IF;
  IF v_plot.status = 'RESERVED' AND rules.lapsed(v_plot.reserved_until, v_now) THEN
    v_done := rules.take_over(p_property, v_now, p_ttl, p_max_active, v_done);
    SELECT p.status, p.reserved_by_id, p.reserved_until INTO v_plot
      FROM property p WHERE p.id = p_property;
    IF v_plot.status = 'RESERVED' AND v_plot.reserved_by_id = p_agent THEN
      -- The caller was first in line: the hold it was promoted to is theirs.
      RETURN jsonb_build_object('outcome', 'reserved', 'reservation', v_done.started[1])
          || rules.effects(v_done);
    END IF;
  END IF;
  IF v_plot.status <> 'AVAILABLE' THEN
    RETURN jsonb_build_object('outcome', 'unavailable', 'status', v_plot.status,
                              'reserved_until', v_plot.reserved_until)
        || rules.effects(v_done);
  END IF;
  IF p_max_active > 0 AND rules.holds_of(p_agent, v_now) >= p_max_active THEN
    RETURN jsonb_build_object('outcome', 'limit', 'limit', p_max_active)
        || rules.effects(v_done);
  END IF;
  v_hold := rules.begin_hold(p_workspace, p_property, p_agent, v_now, p_ttl, p_buyer, p_note,
                             p_key, NULL);
  v_done.started := v_done.started || v_hold;
  RETURN jsonb_build_object('outcome', 'reserved', 'reservation', v_hold) || rules.effects(v_done);
END
$$;

-- joinQueue: puts `p_agent` in line for `p_property`, for `p_buyer`. On a
-- free plot nobody waits for, the agent gets it at once, under the rules of
-- reserve (the entry is PROMOTED with its hold); on a held plot the entry
-- WAITs at the end of the line. A lapsed hold is taken over first, and its
-- line promoted, in this call's transaction, so joining never jumps the line.
-- A sold or withdrawn plot, or one of an archived project, is refused.
-- Outcomes: waiting {entry}, promoted {entry}, refused {standing},
-- not_found, unavailable {status, reserved_until, archived}, already_queued,
-- queue_full {limit}, limit.
CREATE FUNCTION rules.join_queue(p_workspace uuid, p_agent uuid, p_property uuid,
                                 p_buyer rules.buyer, p_max_queue integer, p_ttl interval,
                                 p_max_active integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_plot record;
  v_now timestamptz;
  v_done rules.done := ROW('{}', '{}', '{}', '{}')::rules.done;
  v_entry uuid := rules.uuid7();
  v_hold uuid;
  v_waiting bigint;
BEGIN
  SELECT * INTO v_plot FROM rules.lock_property(p_workspace, p_agent, p_property, p_max_active > 0);
  IF NOT FOUND OR NOT v_plot.caller_ok THEN
    RETURN rules.refusal(p_workspace, p_agent);
  END IF;
  v_now := rules.now();
  IF v_plot.archived THEN
    RETURN rules.archived_refusal(p_property);
  END IF;
  IF p_max_queue <= 0 THEN
    RETURN jsonb_build_object('outcome', 'queue_full', 'limit', 0);
  END IF;
  IF v_plot.status = 'RESERVED' AND rules.lapsed(v_plot.reserved_until, v_now) THEN
    v_done := rules.take_over(p_property, v_now, p_ttl, p_max_active, v_done);
    SELECT p.status, p.reserved_by_id, p.reserved_until INTO v_plot
      FROM property p WHERE p.id = p_property;
  END IF;
  IF v_plot.status NOT IN ('AVAILABLE', 'RESERVED') THEN
    RETURN jsonb_build_object('outcome', 'unavailable', 'status', v_plot.status,
                              'reserved_until', v_plot.reserved_until)
        || rules.effects(v_done);
  END IF;
  IF v_plot.reserved_by_id = p_agent
     OR EXISTS (SELECT 1 FROM queue_entry WHERE property_id = p_property AND agent_id = p_agent
                                            AND status = 'WAITING') THEN
    RETURN jsonb_build_object('outcome', 'already_queued') || rules.effects(v_done);
  END IF;

  IF v_plot.status = 'AVAILABLE' THEN
    -- Free, so nobody waits: the agent gets it now, as reserve would give it.
    IF p_max_active > 0 AND rules.holds_of(p_agent, v_now) >= p_max_active THEN
      RETURN jsonb_build_object('outcome', 'limit', 'limit', p_max_active)
          || rules.effects(v_done);
    END IF;
    INSERT INTO queue_entry (id, workspace_id, property_id, agent_id, buyer_name, buyer_phone,
                             buyer_email, status, created_at)
    VALUES (v_entry, p_workspace, p_property, p_agent, p_buyer.name, p_buyer.phone,
            p_buyer.email, 'WAITING', v_now);
    v_hold := rules.begin_hold(p_workspace, p_property, p_agent, v_now, p_ttl, p_buyer, NULL,
                               NULL, v_entry);
    UPDATE queue_entry SET status = 'PROMOTED', ended_at = v_now, reservation_id = v_hold
     WHERE id = v_entry;
    v_done.started := v_done.started || v_hold;
    v_done.entries := v_done.entries || v_entry;
    RETURN jsonb_build_object('outcome', 'promoted', 'entry', v_entry) || rules.effects(v_done);
  END IF;

  SELECT count(*) INTO v_waiting FROM queue_entry
   WHERE property_id = p_property AND status = 'WAITING';
  IF v_waiting >= p_max_queue THEN
    RETURN jsonb_build_object('outcome', 'queue_full', 'limit', p_max_queue)
        || rules.effects(v_done);
  END IF;
  INSERT INTO queue_entry (id, workspace_id, property_id, agent_id, buyer_name, buyer_phone,
                           buyer_email, status, created_at)
  VALUES (v_entry, p_workspace, p_property, p_agent, p_buyer.name, p_buyer.phone,
          p_buyer.email, 'WAITING', v_now);
  v_done.entries := v_done.entries || v_entry;
  RETURN jsonb_build_object('outcome', 'waiting', 'entry', v_entry) || rules.effects(v_done);
END
$$;

-- leaveQueue: its agent (or a manager, `p_manager`) takes a waiting entry out
-- of the line. Leaving twice is harmless. Outcomes: left {entry}, not_found,
-- forbidden, not_waiting {status}.
CREATE FUNCTION rules.leave_queue(p_workspace uuid, p_person uuid, p_manager boolean,
                                  p_entry uuid) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_entry queue_entry;
  v_done rules.done := ROW('{}', '{}', '{}', '{}')::rules.done;
BEGIN
  PERFORM 1 FROM property p
   WHERE p.id = (SELECT e.property_id FROM queue_entry e
                 WHERE e.id = p_entry AND e.workspace_id = p_workspace)
     FOR UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('outcome', 'not_found', 'what', 'queue_entry');
  END IF;
  SELECT * INTO v_entry FROM queue_entry WHERE id = p_entry;
  IF v_entry.agent_id <> p_person AND NOT p_manager THEN
    RETURN jsonb_build_object('outcome', 'forbidden');
  END IF;
  IF v_entry.status = 'WAITING' THEN
    UPDATE queue_entry SET status = 'LEFT', ended_at = rules.now(), ended_by_id = p_person
     WHERE id = p_entry;
    v_done.entries := ARRAY[p_entry];
  ELSIF v_entry.status <> 'LEFT' THEN
    RETURN jsonb_build_object('outcome', 'not_waiting', 'status', v_entry.status);
  END IF;
  RETURN jsonb_build_object('outcome', 'left', 'entry', p_entry,
                            'entry_now', rules.entries_json(ARRAY[p_entry]))
      || rules.effects(v_done);
END
$$;

-- releaseReservation and convertReservation: a person ends a hold that still
-- holds, if it is theirs or they manage (p_manager), with p_status RELEASED or
-- CONVERTED, recorded as ended by them, as its agent or a manager; a release
-- hands the plot to the line. Outcomes: ended {reservation}, not_found,
-- forbidden, not_active {status}.
CREATE FUNCTION rules.end_by_person(p_workspace uuid, p_person uuid, p_manager boolean,
                                    p_hold uuid, p_status text, p_ttl interval,
                                    p_max_active integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_hold reservation;
  v_now timestamptz;
  v_done rules.done := ROW('{}', '{}', '{}', '{}')::rules.done;
  v_refusal jsonb;
BEGIN
  SELECT * INTO v_hold FROM rules.lock_hold(p_workspace, p_hold);
  IF NOT FOUND THEN
    RETURN jsonb_build_object('outcome', 'not_found', 'what', 'reservation');
  END IF;
  IF v_hold.agent_id <> p_person AND NOT p_manager THEN
    RETURN jsonb_build_object('outcome', 'forbidden');
  END IF;
  v_now := rules.now();
  v_refusal := rules.no_longer_holds(v_hold, v_now);
  IF v_refusal IS NOT NULL THEN
    RETURN v_refusal;
  END IF;
  v_done := rules.end_holds(ARRAY[p_hold], p_status,
                            CASE WHEN v_hold.agent_id = p_person THEN 'agent' ELSE 'manager' END,
                            p_person, v_now, p_ttl, p_max_active, v_done);
  RETURN jsonb_build_object('outcome', 'ended', 'reservation', p_hold) || rules.effects(v_done);
END
$$;

-- extendReservation (the caller checked the role): pushes the end of a hold that
-- still holds to `p_ttl` from now, at most `p_max_extensions` times, and bumps its
-- version, so that the delayed jobs of the earlier version find nothing to do.
-- Outcomes: extended {reservation}, not_found, not_active {status}, extension_limit.
CREATE FUNCTION rules.extend(p_workspace uuid, p_hold uuid, p_ttl interval,
                             p_max_extensions integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_hold reservation;
  v_now timestamptz;
  v_refusal jsonb;
BEGIN
  SELECT * INTO v_hold FROM rules.lock_hold(p_workspace, p_hold);
  IF NOT FOUND THEN
    RETURN jsonb_build_object('outcome', 'not_found', 'what', 'reservation');
  END IF;
  v_now := rules.now();
  v_refusal := rules.no_longer_holds(v_hold, v_now);
  IF v_refusal IS NOT NULL THEN
    RETURN v_refusal;
  END IF;
  IF v_hold.extension_count >= p_max_extensions THEN
    RETURN jsonb_build_object('outcome', 'extension_limit', 'limit', p_max_extensions);
  END IF;
  UPDATE reservation
     SET expires_at = v_now + p_ttl, extension_count = extension_count + 1, version = version + 1
   WHERE id = p_hold;
  UPDATE property SET reserved_until = v_now + p_ttl, updated_at = v_now
   WHERE id = v_hold.property_id;
  RETURN jsonb_build_object('outcome', 'extended', 'reservation', p_hold)
      || rules.effects(ROW('{}', '{}', ARRAY[p_hold], '{}')::rules.done);
END
$$;

-- The release job: ends the hold as EXPIRED if, and only if, it is still ACTIVE,
-- at `p_version`, and lapsed, and hands the plot to the line. Running it again,
-- or with an older version, changes nothing. Outcomes: expired {reservation},
-- not_found, not_active {status}, stale {current}, not_due {expires_at}.
CREATE FUNCTION rules.expire(p_workspace uuid, p_hold uuid, p_version integer,
                             p_ttl interval, p_max_active integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_hold reservation;
  v_now timestamptz;
  v_done rules.done := ROW('{}', '{}', '{}', '{}')::rules.done;
BEGIN
  SELECT * INTO v_hold FROM rules.lock_hold(p_workspace, p_hold);
  IF NOT FOUND THEN
    RETURN jsonb_build_object('outcome', 'not_found', 'what', 'reservation');
  END IF;
  IF v_hold.status <> 'ACTIVE' THEN
    RETURN jsonb_build_object('outcome', 'not_active', 'status', v_hold.status);
  END IF;
  IF v_hold.version <> p_version THEN
    RETURN jsonb_build_object('outcome', 'stale', 'current', v_hold.version);
  END IF;
  v_now := rules.now();
  IF NOT rules.lapsed(v_hold.expires_at, v_now) THEN
    RETURN jsonb_build_object('outcome', 'not_due', 'expires_at', v_hold.expires_at);
  END IF;
  v_done := rules.end_holds(ARRAY[p_hold], 'EXPIRED', 'job', NULL, v_now, p_ttl, p_max_active,
                            v_done);
  RETURN jsonb_build_object('outcome', 'expired', 'reservation', p_hold) || rules.effects(v_done);
END
$$;

-- One batch of the sweep: ends up to `p_limit` lapsed holds, each handing its
-- plot to its line. Property rows that another transaction holds are skipped
-- (SKIP LOCKED): it is releasing, taking over or extending them, and two sweeps
-- never wait on, or end, the same hold. Outcome: swept.
CREATE FUNCTION rules.sweep(p_limit integer, p_ttl interval, p_max_active integer)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_now timestamptz := rules.now();
  v_plots uuid[];
  v_holds uuid[];
  v_done rules.done := ROW('{}', '{}', '{}', '{}')::rules.done;
  v_answer jsonb;
BEGIN
  -- The batch: the longest lapsed first.
  SELECT array_agg(b.id) INTO v_plots FROM (
    SELECT p.id FROM property p
     WHERE p.status = 'RESERVED' AND rules.lapsed(p.reserved_until, v_now)
     ORDER BY p.reserved_until
     LIMIT p_limit
       FOR UPDATE SKIP LOCKED) b;
  -- (An empty batch leaves both arrays NULL, which every step below takes
  -- as no rows.)
  SELECT array_agg(r.id) INTO v_holds FROM reservation r
   WHERE r.property_id = ANY (v_plots) AND r.status = 'ACTIVE'
     AND rules.lapsed(r.expires_at, v_now);
  v_done := rules.end_holds(v_holds, 'EXPIRED', 'sweep', NULL, rules.now(), p_ttl,
                            p_max_active, v_done);
  v_answer := jsonb_build_object('outcome', 'swept') || rules.effects(v_done);
  -- Last, once the answer is made, the tally rows the batch's plots count
  -- in, locked in their order: plot_tally's triggers write them at the
  -- commit in the order the plots changed, which a set-based update does
  -- not fix, so two batches (two sweeps, or a sweep and an import, which
  -- counts its project in the same order) could otherwise take two of them
  -- the other way round. Nothing is locked after them, and they are held
  -- from here to the commit: the answer's way to the client and its COMMIT,
  -- while every other commit in the project waits for them.
  PERFORM 1 FROM plot_tally t
   WHERE (t.project_id, t.shard) IN (
     SELECT p.project_id, plot_tally_shard(p.id) FROM property p WHERE p.id = ANY (v_plots))
   ORDER BY t.project_id, t.shard
     FOR UPDATE;
  RETURN v_answer;
END
$$;

-- The expiry warning job: warns of the hold's end if, and only if, it is still
-- ACTIVE, at `p_version`, not yet warned at that version, and its end is
-- `p_warning` away or nearer. Running it again, for an older version, or for a
-- hold that ended, warns nothing. Outcomes: warned {reservation}, not_found,
-- not_active {status}, stale {current}, already_warned, not_due {expires_at}
-- (when the warning is due: `expires_at` - `p_warning`).
CREATE FUNCTION rules.warn(p_workspace uuid, p_hold uuid, p_version integer,
                           p_warning interval) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_hold reservation;
  v_now timestamptz;
  v_refusal jsonb;
BEGIN
  SELECT * INTO v_hold FROM rules.lock_hold(p_workspace, p_hold);
  IF NOT FOUND THEN
    RETURN jsonb_build_object('outcome', 'not_found', 'what', 'reservation');
  END IF;
  v_now := rules.now();
  v_refusal := rules.no_longer_holds(v_hold, v_now);
  IF v_refusal IS NOT NULL THEN
    RETURN v_refusal;
  END IF;
  IF v_hold.version <> p_version THEN
    RETURN jsonb_build_object('outcome', 'stale', 'current', v_hold.version);
  END IF;
  IF v_hold.warned_version = p_version THEN
    RETURN jsonb_build_object('outcome', 'already_warned');
  END IF;
  IF NOT rules.lapsed(v_hold.expires_at - p_warning, v_now) THEN
    RETURN jsonb_build_object('outcome', 'not_due', 'expires_at', v_hold.expires_at - p_warning);
  END IF;
  UPDATE reservation SET warned_version = p_version WHERE id = p_hold;
  RETURN jsonb_build_object('outcome', 'warned', 'reservation', p_hold,
                            'warned', rules.holds_json(ARRAY[p_hold]));
END
$$;

-- A plot's change of status that no hold made (a withdrawal, a restore), as
-- the answers carry it under "changed", for the live events.
CREATE FUNCTION rules.plot_changed(p_property uuid, p_previous text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_array(jsonb_build_object(
           'workspace_id', p.workspace_id, 'project_id', p.project_id, 'property_id', p.id,
           'code', p.code, 'price', p.price::text, 'previous_status', p_previous,
           'status', p.status, 'at', p.updated_at))
    FROM property p WHERE p.id = p_property
$$;

-- withdrawProperty (the caller checked the role): takes a plot that nobody
-- holds off the market. A lapsed hold is taken over first, as reserve would
-- (ended as EXPIRED, and the plot handed to its line, whose new hold then
-- refuses the withdrawal). A withdrawn plot's line is closed (nobody can wait
-- for a plot that is not held, so there is none unless something else went
-- wrong). Withdrawing twice is harmless. Outcomes: withdrawn {property}
-- (with "changed" when it was not withdrawn yet), not_found, unavailable
-- {status, reserved_until}.
CREATE FUNCTION rules.withdraw(p_workspace uuid, p_property uuid, p_ttl interval,
                               p_max_active integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_plot property;
  v_now timestamptz;
  v_done rules.done := ROW('{}', '{}', '{}', '{}')::rules.done;
BEGIN
  SELECT * INTO v_plot FROM property
   WHERE id = p_property AND workspace_id = p_workspace
     FOR UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('outcome', 'not_found', 'what', 'property');
  END IF;
  v_now := rules.now();
  IF v_plot.status = 'RESERVED' AND rules.lapsed(v_plot.reserved_until, v_now) THEN
    v_done := rules.take_over(p_property, v_now, p_ttl, p_max_active, v_done);
    SELECT * INTO v_plot FROM property WHERE id = p_property;
  END IF;
  IF v_plot.status = 'WITHDRAWN' THEN
    RETURN jsonb_build_object('outcome', 'withdrawn', 'property', p_property)
        || rules.effects(v_done);
  END IF;
  IF v_plot.status <> 'AVAILABLE' THEN
    RETURN jsonb_build_object('outcome', 'unavailable', 'status', v_plot.status,
                              'reserved_until', v_plot.reserved_until)
        || rules.effects(v_done);
  END IF;
  UPDATE property SET status = 'WITHDRAWN', updated_at = v_now WHERE id = p_property;
  v_done := rules.close_lines(ARRAY[p_property], v_now, v_done);
  RETURN jsonb_build_object('outcome', 'withdrawn', 'property', p_property,
                            'changed', rules.plot_changed(p_property, 'AVAILABLE'))
      || rules.effects(v_done);
END
$$;

-- restoreProperty (the caller checked the role): puts a withdrawn plot back
-- on the market, AVAILABLE. Restoring a plot that reads AVAILABLE is
-- harmless. Outcomes: restored {property} (with "changed" when it was
-- withdrawn), not_found, not_withdrawn {status}.
CREATE FUNCTION rules.restore(p_workspace uuid, p_property uuid) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_status text;
  v_now timestamptz;
BEGIN
  PERFORM 1 FROM property WHERE id = p_property AND workspace_id = p_workspace FOR UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('outcome', 'not_found', 'what', 'property');
  END IF;
  v_now := rules.now();
  SELECT n.status INTO v_status FROM rules.property_now n WHERE n.id = p_property;
  IF v_status = 'AVAILABLE' THEN
    RETURN jsonb_build_object('outcome', 'restored', 'property', p_property);
  END IF;
  IF v_status <> 'WITHDRAWN' THEN
    RETURN jsonb_build_object('outcome', 'not_withdrawn', 'status', v_status);
  END IF;
  UPDATE property SET status = 'AVAILABLE', updated_at = v_now WHERE id = p_property;
  RETURN jsonb_build_object('outcome', 'restored', 'property', p_property,
                            'changed', rules.plot_changed(p_property, 'WITHDRAWN'));
END
$$;

-- Queue entries as of now, with their place in line (1 for the next; NULL
-- once they no longer wait).
CREATE VIEW rules.queue_entry_now AS
SELECT e.*,
       CASE WHEN e.status = 'WAITING' THEN
         (SELECT count(*) FROM queue_entry w
           WHERE w.property_id = e.property_id AND w.status = 'WAITING'
             AND (w.created_at, w.id) <= (e.created_at, e.id))
       END AS position
FROM queue_entry e;
