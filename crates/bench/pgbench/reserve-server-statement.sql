-- The server's own reserve statement, as its one-round-trip way sends a
-- reserve of a free plot (`rules::ask_at_once` in crates/domain/src/rules.rs;
-- off in the server, which sends the same call between BEGIN and COMMIT):
-- `rules.reserve` of migrations/src/rules.sql, in autocommit, after
-- `rules.at_once` (sent now, refused if it arrives 5 s late). The server
-- gives the statement 50 ms for any lock and then sends it again in a
-- transaction; pgbench cannot, so here it waits as long as the session's
-- lock_timeout (3 s): under load the brief locks PostgreSQL takes on the
-- rows every insert references (the workspace's, the agent's) reach tens of
-- milliseconds now and then. `just bench` runs it beside the limit
-- (reserve-one-statement.sql) and the earlier transaction
-- (reserve-transaction.sql): its rate against the limit's is what the
-- rules' PL/pgSQL costs PostgreSQL, and the server's rate against it is
-- what the server adds. The ids come from the helper tables
-- `holdfast-bench pgbench-prepare` makes, each plot drawn once, as the
-- other scripts draw them; the server's call carries no buyer, note or key
-- in the bench. Variables: -D ws=<workspace id> -D agents=<number of
-- agents> -D ttl_secs=<hold time in seconds> -D max_active=<per-agent limit, 0: none>.
\set agent random(1, :agents)
SELECT rules.reserve(:ws::uuid, (SELECT user_id FROM bench_agent WHERE n = :agent),
                     (SELECT property_id FROM bench_plot WHERE n = (SELECT nextval('bench_plot_seq'))),
                     make_interval(secs => :ttl_secs), :max_active, ROW(NULL, NULL, NULL),
                     NULL, NULL)::text AS answer
  FROM rules.at_once(clock_timestamp(), 5, 3);
