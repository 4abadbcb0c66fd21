-- The reserve of crates/domain/src/reservations.rs (`reserve`, with no
-- per-agent limit, HOLDFAST_MAX_ACTIVE_PER_AGENT=0) as the server sends it,
-- for `pgbench -M prepared`: one call of the hold rules' `rules.reserve` in a
-- transaction of its own. Where the server gets ids from its client, pgbench
-- looks them up in the helper tables `holdfast-bench pgbench-prepare` makes
-- (bench_plot holds the plots in a random order, drawn once each through
-- bench_plot_seq, as the spread scenario draws them).
-- Variables: -D ws=<workspace id> -D agents=<number of agents>.
\set agent random(1, :agents)
BEGIN;
SELECT rules.reserve(:ws::uuid,
                     (SELECT user_id FROM bench_agent WHERE n = :agent),
                     (SELECT property_id FROM bench_plot WHERE n = (SELECT nextval('bench_plot_seq'))),
                     make_interval(secs => 86400), 0)::text AS answer;
COMMIT;
