#!/usr/bin/env bash
# `just bench`: the benchmarks of docs/BENCHMARKS.md, side by side in one run.
# Makes a throw-away database with a 100,000-plot project and 1,000 agents,
# starts the release-build server and worker on it (own Redis queue, free
# ports), and runs: spread over GraphQL vs pgbench on the best one-statement
# SQL for the same work (the limit) and on the server's transaction (for
# continuity), hot (100 agents, one plot), the original load test (story-2.5), mixed, reads of
# the large project under the spread load, launch (1,000 agents on a
# 200-plot project at one instant), the sweep vs a raw batched UPDATE, the
# release lag of 1,000 short holds, the server's peak memory, and the line
# behind held plots (on servers and workers of their own): the
# queue scenario (16 agents joining, leaving and reading the lines of a few
# plots while holds lapse and are released) and the promotions of 10,000
# lapsed holds with a line of 3 each. Prints a summary with each target and
# PASS/MISS; exits non-zero when an invariant breaks or a run fails. Cleans
# up after itself.
#
# Settings (environment): BENCH_SECONDS (spread and pgbench, default 10),
# BENCH_ROUNDS (spread/pgbench rounds, default 3), BENCH_PLOTS (100000),
# BENCH_STORY_SECONDS (30), BENCH_MIXED_SECONDS (10), BENCH_READS_SECONDS
# (10), BENCH_READERS (4), BENCH_LAUNCH_AGENTS (1000), BENCH_LAUNCH_PLOTS
# (200), BENCH_LAG_COUNT (1000), BENCH_SWEEP_COUNT (100000),
# BENCH_QUEUE_SECONDS (the queue scenario, 20), BENCH_PROMOTION_COUNT (lapsed
# holds with a line of 3, 10000), BENCH_RUST_LOG (warn), PGHOST/PGPORT/PGUSER,
# BENCH_ONLY=<reserve,launch,reads,queue> (only those parts, comma-separated:
# reserve is the spread/pgbench rounds, for iterating on the reserve path;
# queue is the line: the queue scenario and the promotions),
# BENCH_LIMIT_SCRIPT=<pgbench script> (the limit's
# statement; default crates/bench/pgbench/reserve-one-statement.sql, whose
# header says how to write another), BENCH_BASELINE=<directory with another holdfast-server
# binary> (each round also runs spread against that build, side by side:
# before and after a change in one run), BENCH_PIN=1 (each round also runs
# spread and pgbench with the local PostgreSQL on half the CPUs and
# everything else on the other half, as when the database has cores of its
# own: changes the affinity of the machine's PostgreSQL and Redis for the
# run, and puts it back), BENCH_FLOOR=1 (each round also runs spread against
# `holdfast-bench floor-server`: the same reserve, token check, release job
# and change event without GraphQL, to show what the stack itself allows).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${BENCH_SECONDS:-10}"
rounds="${BENCH_ROUNDS:-3}"
plots="${BENCH_PLOTS:-100000}"
story_seconds="${BENCH_STORY_SECONDS:-30}"
mixed_seconds="${BENCH_MIXED_SECONDS:-10}"
lag_count="${BENCH_LAG_COUNT:-1000}"
sweep_count="${BENCH_SWEEP_COUNT:-100000}"
reads_seconds="${BENCH_READS_SECONDS:-10}"
readers="${BENCH_READERS:-4}"
launch_agents="${BENCH_LAUNCH_AGENTS:-1000}"
launch_plots="${BENCH_LAUNCH_PLOTS:-200}"
line_seconds="${BENCH_QUEUE_SECONDS:-20}"
promotion_count="${BENCH_PROMOTION_COUNT:-10000}"
only="${BENCH_ONLY:-all}"
if [ "$only" != all ]; then
  IFS=, read -ra parts <<< "$only"
  for part in "${parts[@]}"; do
    case "$part" in reserve|launch|reads|queue) ;;
      *) echo "error: BENCH_ONLY is a comma-separated list of reserve, launch, reads and queue (or unset), not '$only'" >&2; exit 2 ;;
    esac
  done
fi
# Whether this run includes a part (BENCH_ONLY).
want() { [ "$only" = all ] || [[ ",$only," == *",$1,"* ]]; }
# The pgbench scripts: the limit (the reserve ratio's denominator) and the
# server's transaction beside it. Variables: see the scripts' headers.
limit_script="${BENCH_LIMIT_SCRIPT:-crates/bench/pgbench/reserve-one-statement.sql}"
txn_script="crates/bench/pgbench/reserve-transaction.sql"
# The server's own statement (rules.reserve in one round trip), for what
# the rules' PL/pgSQL costs PostgreSQL against the limit's SQL.
rules_script="crates/bench/pgbench/reserve-server-statement.sql"
[ -r "$limit_script" ] || { echo "error: BENCH_LIMIT_SCRIPT=$limit_script is not a readable file" >&2; exit 2; }
# pgbench draws its agents among the first 100; the workspace holds enough
# for launch and for reads' readers too.
agents=100
seed_agents="$agents"
if want launch && [ "$launch_agents" -gt "$seed_agents" ]; then seed_agents="$launch_agents"; fi
if want reads && [ $((16 + readers)) -gt "$seed_agents" ]; then seed_agents=$((16 + readers)); fi

# launch holds one connection per agent open in the load generator and in
# the server: every process started here gets the hard limit on open files.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if want launch && [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((launch_agents + 256)) ]; then
  echo "error: launch with ${launch_agents} agents needs more open files than this shell may have ($(ulimit -n)); raise the hard limit or BENCH_LAUNCH_AGENTS" >&2
  exit 2
fi

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
stamp="$(date +%s)_$$"
db="holdfast_bench_${stamp}"
export DATABASE_URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/${db}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export HOLDFAST_QUEUE="hf-bench-${stamp}"
export HOLDFAST_JWT_SECRET="bench-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# Logs at warn, as a loaded production server would run; the address lines
# are kept so the script can read the ports the processes bound.
export RUST_LOG="${BENCH_RUST_LOG:-warn},holdfast_server::app=info"
export HOLDFAST_LOG_FORMAT=pretty

work="$(mktemp -d -t holdfast-bench.XXXXXX)"
results="$work/results.env"
: > "$results"
pids=()
failed=()
pin="${BENCH_PIN:-}"
case "$pin" in ""|1) ;; *) echo "error: BENCH_PIN must be 1 (or unset), not '$pin'" >&2; exit 2 ;; esac
floor="${BENCH_FLOOR:-}"
case "$floor" in ""|1) ;; *) echo "error: BENCH_FLOOR must be 1 (or unset), not '$floor'" >&2; exit 2 ;; esac
# A command prefix that runs the load generator and pgbench on some CPUs.
on_cpus=()

cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # The servers are started in subshells, so they are not this shell's
  # children to `wait` for: poll until they are gone (bounded).
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  done
  [ -n "$pin" ] && [ -n "${pg_home_cpus:-}" ] && unpin
  psql -q -d postgres -c "DROP DATABASE IF EXISTS ${db} WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -u "$REDIS_URL" --scan --pattern "${HOLDFAST_QUEUE}*" 2>/dev/null \
    | xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
  if [ "${BENCH_KEEP_LOGS:-}" ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
  exit "$status"
}
# An interrupt still cleans up, and the exit status says it was interrupted.
trap cleanup EXIT; trap 'exit 130' INT; trap 'exit 143' TERM

section() { printf '\n== %s ==\n' "$*"; }

section "build (release)"
cargo build --release -p holdfast-server -p holdfast-worker -p holdfast-bench
bin="${CARGO_TARGET_DIR:-target}/release"
bench() { "${on_cpus[@]}" "$bin/holdfast-bench" --results "$results" "$@"; }
baseline="${BENCH_BASELINE:-}"
if [ -n "$baseline" ] && [ ! -x "$baseline/holdfast-server" ]; then
  echo "error: BENCH_BASELINE=$baseline holds no executable holdfast-server" >&2; exit 2
fi

# BENCH_PIN: PostgreSQL on the upper half of the CPUs, the server, worker,
# Redis, load generator and pgbench on the lower half. Backends forked later
# inherit the postmaster's affinity; the ones already open are moved too.
# Afterwards every process goes back to the CPUs PostgreSQL and Redis had.
if [ -n "$pin" ]; then
  ncpu="$(nproc)"
  [ "$ncpu" -ge 2 ] || { echo "error: BENCH_PIN needs at least 2 CPUs, this machine has $ncpu" >&2; exit 2; }
  cpu_list() { if [ "$1" = "$2" ]; then echo "$1"; else echo "$1-$2"; fi; }
  app_cpus="$(cpu_list 0 $((ncpu / 2 - 1)))"; db_cpus="$(cpu_list $((ncpu / 2)) $((ncpu - 1)))"
  postmaster="$(pgrep -o -x postgres || true)"
  [ -n "$postmaster" ] || { echo "error: BENCH_PIN needs a local PostgreSQL (no process named postgres here)" >&2; exit 2; }
  cpus_of() { taskset -p -c "$1" | awk -F': ' '{ print $2 }'; }
  home="$(cpus_of "$postmaster")"
  taskset -p -c "$home" "$postmaster" >/dev/null \
    || { echo "error: BENCH_PIN cannot set the affinity of PostgreSQL (pid $postmaster): run as its owner or root" >&2; exit 2; }
  pg_home_cpus="$home"
  redis_pid="$(pgrep -o -x redis-server || true)"
  redis_home_cpus="$([ -n "$redis_pid" ] && cpus_of "$redis_pid" || echo "0-$((ncpu - 1))")"
fi
set_affinity() { # cpus, then pids (with all their threads)
  local cpus="$1" p; shift
  for p in "$@"; do taskset -a -p -c "$cpus" "$p" >/dev/null 2>&1 || true; done
}
pin_now() {
  # shellcheck disable=SC2046 # one pid per word
  set_affinity "$db_cpus" $(pgrep -x postgres)
  # shellcheck disable=SC2046
  set_affinity "$app_cpus" "${pids[@]}" $(pgrep -x redis-server)
  on_cpus=(taskset -c "$app_cpus")
}
unpin() {
  # shellcheck disable=SC2046
  set_affinity "$pg_home_cpus" $(pgrep -x postgres)
  # shellcheck disable=SC2046
  set_affinity "$redis_home_cpus" $(pgrep -x redis-server)
  set_affinity "0-$((ncpu - 1))" "${pids[@]}"
  on_cpus=()
}

# Starts the server with extra settings; prints "PID URL". SERVER_BIN
# overrides the binary's directory (the baseline build), SERVER_CMD the
# whole command (the floor server).
start_server() { # name, then VAR=value settings
  local name="$1" cmd; shift
  read -ra cmd <<< "${SERVER_CMD:-${SERVER_BIN:-$bin}/holdfast-server serve}"
  env "$@" HOLDFAST_LISTEN=127.0.0.1:0 "${cmd[@]}" >"$work/$name.log" 2>&1 &
  local pid=$! url=""
  for _ in $(seq 1 120); do
    url="$(grep -o 'http://127\.0\.0\.1:[0-9]*/graphql' "$work/$name.log" | head -n1 || true)"
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/$name.log" >&2; echo "error: $name did not start" >&2; return 1; }
    sleep 0.25
  done
  [ -n "$url" ] || { echo "error: $name printed no address" >&2; return 1; }
  echo "$pid $url"
}

# CPU time in clock ticks: of every local process with this name (reaped
# children included, so PostgreSQL backends that exited still count), and of
# this script's own finished children (the load generator, pgbench).
ticks_of() { local t=0 v; for p in $(pgrep -x "$1" || true); do v="$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$p/stat" 2>/dev/null || echo 0)"; t=$((t + v)); done; echo "$t"; }
# PostgreSQL's ticks once its backends have exited and been counted: a
# backend's last CPU can reach /proc a moment after its client has gone
# (seen as hundreds of ticks a second late with PostgreSQL on one CPU), so
# read until two readings 0.2 s apart agree (bounded at 5 s).
settled_pg_ticks() { local a b; a="$(ticks_of postgres)"; for _ in $(seq 1 25); do sleep 0.2; b="$(ticks_of postgres)"; [ $((b - a)) -le 2 ] && break; a="$b"; done; echo "$b"; }
own_ticks() { awk '{ print $16 + $17 }' "/proc/$$/stat"; }
# Milliseconds of CPU per operation: ticks, operations per second, seconds.
ms_per_op() { awk -v t="$1" -v r="$2" -v s="$3" -v hz="$(getconf CLK_TCK)" 'BEGIN { if (r > 0) printf "%.3f", t * 1000 / hz / (r * s); else print "n/a" }'; }

peak_rss_mb() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

section "database ${db}, queue ${HOLDFAST_QUEUE}"
"$bin/holdfast-server" migrate
started=$(date +%s)
bench setup --plots "$plots" --agents "$seed_agents" --server-bin "$bin/holdfast-server" --out "$work/ws.json"
echo "seeded ${plots} plots and ${seed_agents} agents in $(( $(date +%s) - started )) s"
ws_id="$(jq -r .workspaceId "$work/ws.json")"
bench pgbench-prepare --workspace-file "$work/ws.json"

# The worker runs the release jobs; its cron sweep is off so that it cannot
# take rows from under the sweep benchmark (the jobs alone release the lag holds).
HOLDFAST_METRICS_LISTEN=127.0.0.1:0 HOLDFAST_SWEEP_SCHEDULE=off \
  "$bin/holdfast-worker" >"$work/worker.log" 2>&1 &
pids+=($!)
read -r server_pid url < <(start_server server HOLDFAST_MAX_ACTIVE_PER_AGENT=0)
pids+=("$server_pid")
echo "server pid ${server_pid} at ${url}"
target=(--url "$url" --workspace-file "$work/ws.json")
if [ -n "$baseline" ]; then
  read -r base_pid base_url < <(SERVER_BIN="$baseline" start_server baseline-server HOLDFAST_MAX_ACTIVE_PER_AGENT=0)
  pids+=("$base_pid")
  echo "baseline server ($baseline/holdfast-server) pid ${base_pid} at ${base_url}"
fi
if [ -n "$floor" ]; then
  read -r floor_pid floor_url < <(SERVER_CMD="$bin/holdfast-bench floor-server" start_server floor-server HOLDFAST_MAX_ACTIVE_PER_AGENT=0)
  pids+=("$floor_pid")
  echo "floor server (holdfast-bench floor-server) pid ${floor_pid} at ${floor_url}"
fi

# Warm-up: first connections, prepared statements and caches, not measured.
for warm_url in "$url" ${baseline:+"$base_url"} ${floor:+"$floor_url"}; do
  bench reset --workspace-file "$work/ws.json"
  bench run --scenario spread --url "$warm_url" --workspace-file "$work/ws.json" --agents 16 --duration 2s > /dev/null
done

# The latest value a run wrote for NAME (each run appends its figures).
last_result() { grep "^$1=" "$results" | tail -n1 | cut -d= -f2; }

# One spread run against the server PID at URL; prints each process's CPU
# per reservation and sets `run_rate` (reserved per second).
spread_run() { # pid, url, what failed says
  local pid="$1" run_url="$2" srv0 pg0 rd0 cl0 srv1 pg1 rd1 cl1 r
  bench reset --workspace-file "$work/ws.json"
  srv0="$(awk '{ print $14 + $15 }' "/proc/$pid/stat")"; pg0="$(settled_pg_ticks)"; rd0="$(ticks_of redis-server)"; cl0="$(own_ticks)"
  bench run --scenario spread --url "$run_url" --workspace-file "$work/ws.json" --agents 16 --duration "${seconds}s" || failed+=("$3")
  srv1="$(awk '{ print $14 + $15 }' "/proc/$pid/stat")"; pg1="$(settled_pg_ticks)"; rd1="$(ticks_of redis-server)"; cl1="$(own_ticks)"
  r="$(last_result spread_reserved_per_sec)"
  echo "CPU ms per reservation: server $(ms_per_op $((srv1 - srv0)) "$r" "$seconds"), PostgreSQL $(ms_per_op $((pg1 - pg0)) "$r" "$seconds"), Redis $(ms_per_op $((rd1 - rd0)) "$r" "$seconds"), load generator $(ms_per_op $((cl1 - cl0)) "$r" "$seconds"), total $(ms_per_op $((srv1 - srv0 + pg1 - pg0 + rd1 - rd0 + cl1 - cl0)) "$r" "$seconds") (local processes)"
  run_rate="$r"
}

# One pgbench run of SCRIPT, the server's settings as variables (a hold of
# 24 h, no per-agent limit); prints its CPU per transaction and sets
# `run_rate` (transactions per second). Every transaction must have made a
# reservation: fewer means the plots ran out (raise BENCH_PLOTS) or the
# script reserved nothing, and the rate would not be a reserve rate.
pgbench_run() { # script, what failed says
  local script="$1" pg0 cl0 pg1 cl1 r made processed
  bench reset --workspace-file "$work/ws.json"
  psql -q -d "$db" -c "ALTER SEQUENCE bench_plot_seq RESTART"
  pg0="$(settled_pg_ticks)"; cl0="$(own_ticks)"
  "${on_cpus[@]}" pgbench -n -M prepared -c 16 -j 2 -T "$seconds" -D "ws=${ws_id}" -D "agents=${agents}" \
    -D ttl_secs=86400 -D max_active=0 -f "$script" "$db" > "$work/pgbench.out" 2>&1 || { cat "$work/pgbench.out"; failed+=("$2"); }
  pg1="$(settled_pg_ticks)"; cl1="$(own_ticks)"
  grep -E '^(number of (transactions|failed)|latency|tps)' "$work/pgbench.out" || true
  r="$(awk '/^tps = / { printf "%.1f", $3; exit }' "$work/pgbench.out")"
  echo "CPU ms per transaction: PostgreSQL $(ms_per_op $((pg1 - pg0)) "$r" "$seconds"), pgbench $(ms_per_op $((cl1 - cl0)) "$r" "$seconds"), total $(ms_per_op $((pg1 - pg0 + cl1 - cl0)) "$r" "$seconds") (local processes)"
  made="$(psql -Atq -d "$db" -c "SELECT count(*) FROM reservation")"
  processed="$(awk -F': ' '/^number of transactions actually processed/ { split($2, a, "/"); print a[1]; exit }' "$work/pgbench.out")"
  echo "reservations in the database after pgbench: ${made} (transactions: ${processed:-?})"
  if [ "${made:-0}" -lt "${processed:-0}" ]; then
    echo "error: ${processed} transactions made ${made} reservations (plots used up? raise BENCH_PLOTS)" >&2
    failed+=("$2: ${processed} transactions, ${made} reservations")
  fi
  run_rate="$r"
  bench check "${target[@]}" --agents 1 || failed+=("invariants after $2")
}

spread_rates=(); limit_rates=(); txn_rates=(); rules_rates=(); base_rates=(); floor_rates=()
pinned_spread_rates=(); pinned_limit_rates=(); pinned_txn_rates=()
want reserve || rounds=0
for round in $(seq 1 "$rounds"); do
  section "round ${round}/${rounds}: spread, 16 agents over GraphQL HTTP, ${seconds} s"
  spread_run "$server_pid" "$url" "spread round ${round}"
  spread_rates+=("$run_rate")
  # The summary's latency is the server's on shared cores, not that of the
  # baseline, floor or pinned runs that follow.
  spread_p50="$(last_result spread_p50_ms)"; spread_p99="$(last_result spread_reserve_p99_ms)"

  if [ -n "$baseline" ]; then
    section "round ${round}/${rounds}: spread against the baseline build, 16 agents, ${seconds} s"
    spread_run "$base_pid" "$base_url" "baseline spread round ${round}"
    base_rates+=("$run_rate")
  fi

  if [ -n "$floor" ]; then
    section "round ${round}/${rounds}: spread against the floor server (no GraphQL), 16 agents, ${seconds} s"
    spread_run "$floor_pid" "$floor_url" "floor spread round ${round}"
    floor_rates+=("$run_rate")
  fi

  section "round ${round}/${rounds}: pgbench, the limit: one statement (${limit_script}), 16 clients, ${seconds} s"
  pgbench_run "$limit_script" "pgbench one statement round ${round}"
  limit_rates+=("$run_rate")

  section "round ${round}/${rounds}: pgbench, the server's transaction (${txn_script}), 16 clients, ${seconds} s"
  pgbench_run "$txn_script" "pgbench transaction round ${round}"
  txn_rates+=("$run_rate")

  section "round ${round}/${rounds}: pgbench, the server's statement (${rules_script}), 16 clients, ${seconds} s"
  pgbench_run "$rules_script" "pgbench server statement round ${round}"
  rules_rates+=("$run_rate")

  if [ -n "$pin" ]; then
    pin_now
    section "round ${round}/${rounds}, pinned: PostgreSQL on CPUs ${db_cpus}, the rest on ${app_cpus}: spread"
    spread_run "$server_pid" "$url" "pinned spread round ${round}"
    pinned_spread_rates+=("$run_rate")
    section "round ${round}/${rounds}, pinned: PostgreSQL on CPUs ${db_cpus}, the rest on ${app_cpus}: pgbench, one statement"
    pgbench_run "$limit_script" "pinned pgbench one statement round ${round}"
    pinned_limit_rates+=("$run_rate")
    section "round ${round}/${rounds}, pinned: PostgreSQL on CPUs ${db_cpus}, the rest on ${app_cpus}: pgbench, transaction"
    pgbench_run "$txn_script" "pinned pgbench transaction round ${round}"
    pinned_txn_rates+=("$run_rate")
    unpin
  fi
done

# The baseline and floor servers are done: each holds a pool of up to 32
# PostgreSQL connections, and with the lag, line and promotions servers
# still to come they would take PostgreSQL past its 100 connections (a full
# run with BENCH_BASELINE failed so: holdfast-bench's own pool timed out).
for pid in ${base_pid:-} ${floor_pid:-}; do kill "$pid" 2>/dev/null || true; done

if [ "$only" = all ]; then
section "hot: 100 agents, one plot, one instant"
bench reset --workspace-file "$work/ws.json"
bench run --scenario hot "${target[@]}" --agents 100 || failed+=("hot")

section "story 2.5: 50 users, ${story_seconds} s"
bench run --scenario story-2.5 "${target[@]}" --agents 50 --duration "${story_seconds}s" || failed+=("story-2.5")

section "mixed: 16 agents, ${mixed_seconds} s"
bench run --scenario mixed "${target[@]}" --agents 16 --duration "${mixed_seconds}s" || failed+=("mixed")

fi

if want reads; then
section "reads: ${readers} readers of the ${plots}-plot project while 16 agents reserve (spread), ${reads_seconds} s"
bench reset --workspace-file "$work/ws.json"
bench run --scenario reads "${target[@]}" --agents 16 --readers "$readers" --duration "${reads_seconds}s" || failed+=("reads")
fi
# The memory target is the server's under the load so far (spread, hot,
# story-2.5, mixed, reads); launch's 1,000 connections are reported beside it.
if [ "$only" = all ]; then
  load_rss="$(peak_rss_mb "$server_pid")"
  echo "server peak resident memory (VmHWM) before launch: ${load_rss} MB"
fi

if want launch; then
section "launch: ${launch_agents} agents at one barrier on a new project of ${launch_plots} plots"
echo "open files: $(ulimit -n) for this script and what it starts; the server's pool: ${HOLDFAST_DB_MAX_CONNECTIONS:-32} connections"
bench add-project --workspace-file "$work/ws.json" --plots "$launch_plots" --name Launch --out "$work/launch.json"
bench run --scenario launch --url "$url" --workspace-file "$work/launch.json" --agents "$launch_agents" || failed+=("launch")
fi

if [ "$only" = all ]; then
server_rss="$(peak_rss_mb "$server_pid")"
echo "server peak resident memory (VmHWM), launch included: ${server_rss} MB"
# Its pool's idle connections would stay open for minutes: stop it, so the
# rest of the run leaves room under max_connections for whoever shares PostgreSQL.
kill "$server_pid"

section "sweep of ${sweep_count} lapsed holds vs the raw batched UPDATE"
bench sweep --workspace-file "$work/ws.json" --count "$sweep_count" --batch-size 1000 || failed+=("sweep")

section "release lag of ${lag_count} holds of 5 s (second server, HOLDFAST_RESERVATION_TTL=5s)"
bench reset --workspace-file "$work/ws.json"
read -r lag_pid lag_url < <(start_server lag-server HOLDFAST_MAX_ACTIVE_PER_AGENT=0 HOLDFAST_RESERVATION_TTL=5s HOLDFAST_DB_MAX_CONNECTIONS=10)
pids+=("$lag_pid")
bench lag --url "$lag_url" --workspace-file "$work/ws.json" --agents 16 --count "$lag_count" || failed+=("lag")
lag_rss="$(peak_rss_mb "$lag_pid")"
worker_pid="${pids[0]}"
worker_rss="$(peak_rss_mb "$worker_pid")"
fi

if want queue; then
# The queue scenario on a server and worker of their own: holds of 5 s, so
# that they lapse during the run and the lines move as they end (the
# worker's holds are as short), no per-agent limit, their own Redis queue.
line_env=(HOLDFAST_QUEUE="${HOLDFAST_QUEUE}-line" HOLDFAST_RESERVATION_TTL=5s HOLDFAST_MAX_ACTIVE_PER_AGENT=0)
env "${line_env[@]}" HOLDFAST_METRICS_LISTEN=127.0.0.1:0 HOLDFAST_SWEEP_SCHEDULE=off \
  "$bin/holdfast-worker" >"$work/line-worker.log" 2>&1 &
pids+=($!)
read -r line_pid line_url < <(start_server line-server "${line_env[@]}" HOLDFAST_DB_MAX_CONNECTIONS=10)
pids+=("$line_pid")
echo "line server pid ${line_pid} at ${line_url}, its worker pid ${pids[-2]}"

section "queue: 16 agents join, leave and read the lines of a few plots for ${line_seconds} s, holds of 5 s"
bench add-project --workspace-file "$work/ws.json" --plots 100 --name Line --out "$work/line.json"
bench run --scenario queue --url "$line_url" --workspace-file "$work/line.json" --agents 16 --duration "${line_seconds}s" || failed+=("queue")

# Promotions on a server and worker of their own (their own Redis queue). As
# for the release lag, the holds lapse once the agents are done, at the rate
# they were made: the server's hold time outlasts the setup (100-300 plots a
# second here, each a reserve and three joins; the run counts any hold that
# lapses sooner). The worker's holds last the default 24 h: each line moves
# once, from the first place, and the other two wait on.
promotions_env=(HOLDFAST_QUEUE="${HOLDFAST_QUEUE}-promotions" HOLDFAST_MAX_ACTIVE_PER_AGENT=0)
env "${promotions_env[@]}" HOLDFAST_METRICS_LISTEN=127.0.0.1:0 HOLDFAST_SWEEP_SCHEDULE=off \
  "$bin/holdfast-worker" >"$work/promotions-worker.log" 2>&1 &
pids+=($!)
promotion_hold=$((promotion_count / 80 + 15))
read -r promotions_pid promotions_url < <(start_server promotions-server "${promotions_env[@]}" HOLDFAST_RESERVATION_TTL="${promotion_hold}s" HOLDFAST_DB_MAX_CONNECTIONS=10)
pids+=("$promotions_pid")
section "promotions: ${promotion_count} holds of ${promotion_hold} s with a line of 3 each, each handed on to the first in line as it lapses"
bench add-project --workspace-file "$work/ws.json" --plots "$promotion_count" --name Promotions --out "$work/promotions.json"
bench promotions --url "$promotions_url" --workspace-file "$work/promotions.json" --agents 16 --count "$promotion_count" --line 3 || failed+=("promotions")
fi

# shellcheck disable=SC1090
source "$results"

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio_of() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == ">=") ? (v + 0 >= t) : (v + 0 < t); print (v != "n/a" && v != "" && ok) ? "PASS" : "MISS" }'; }
# Each round's ratio is measured side by side; the machine's load drifts
# between rounds, so the verdict takes the median of the rounds' ratios.
# Each rate's ratio to its round's rate in the array named first (pgbench's
# of the same script and placement), space-separated.
ratios_to() { local -n refs="$1"; shift; local i=0 rate; for rate in "$@"; do printf '%s ' "$(ratio_of "$rate" "${refs[$i]}")"; i=$((i + 1)); done; }
# One line of the summary: what, target, measured, verdict.
line() { printf '%-50s %-18s %-44s %s\n' "$@"; }

section "summary ($(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), PostgreSQL $(psql -Atq -d postgres -c 'SHOW server_version' 2>/dev/null | cut -d' ' -f1 || echo '?'), Redis $(redis-cli -u "$REDIS_URL" info server | awk -F: '/redis_version/ { print $2 }' | tr -d '\r'), release build, $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg))"
line "what" "target" "measured" "verdict"
if want reserve; then
  spread_rate="$(median "${spread_rates[@]}")"
  limit_rate="$(median "${limit_rates[@]}")"
  per_round="$(ratios_to limit_rates "${spread_rates[@]}")"
  txn_per_round="$(ratios_to txn_rates "${spread_rates[@]}")"
  # shellcheck disable=SC2086 # one ratio per word
  reserve_ratio="$(median $per_round)"
  line "reserve: GraphQL HTTP / pgbench one statement" ">= 0.5" \
    "${reserve_ratio} (median of rounds ${per_round% }; ${spread_rate} vs ${limit_rate} /s)" "$(verdict "$reserve_ratio" 0.5 '>=')"
  # shellcheck disable=SC2086
  line "  the same / pgbench, the server's transaction" "(was >= 0.7)" \
    "$(median $txn_per_round) (median of rounds ${txn_per_round% }; $(median "${txn_rates[@]}") /s)" ""
  rules_per_round="$(ratios_to rules_rates "${spread_rates[@]}")"
  rules_to_limit="$(ratios_to limit_rates "${rules_rates[@]}")"
  # shellcheck disable=SC2086
  line "  the same / pgbench, the server's statement" "" \
    "$(median $rules_per_round) (median of rounds ${rules_per_round% }; $(median "${rules_rates[@]}") /s, itself $(median $rules_to_limit) of the limit)" ""
  if [ -n "$baseline" ]; then
    base_per_round="$(ratios_to limit_rates "${base_rates[@]}")"
    # shellcheck disable=SC2086
    line "  the same, baseline build (BENCH_BASELINE)" "" \
      "$(median $base_per_round) (median of rounds ${base_per_round% }; $(median "${base_rates[@]}") /s)" ""
  fi
  if [ -n "$floor" ]; then
    floor_per_round="$(ratios_to limit_rates "${floor_rates[@]}")"
    # shellcheck disable=SC2086
    line "  the same, floor: no GraphQL (BENCH_FLOOR)" "" \
      "$(median $floor_per_round) (median of rounds ${floor_per_round% }; $(median "${floor_rates[@]}") /s)" ""
  fi
  if [ -n "$pin" ]; then
    pinned_per_round="$(ratios_to pinned_limit_rates "${pinned_spread_rates[@]}")"
    pinned_txn_per_round="$(ratios_to pinned_txn_rates "${pinned_spread_rates[@]}")"
    # shellcheck disable=SC2086
    line "  the same, PostgreSQL on CPUs of its own" "(BENCH_PIN)" \
      "$(median $pinned_per_round) (median of rounds ${pinned_per_round% }; $(median "${pinned_spread_rates[@]}") vs $(median "${pinned_limit_rates[@]}") /s; / transaction $(median $pinned_txn_per_round), $(median "${pinned_txn_rates[@]}") /s)" ""
  fi
fi
if [ "$only" = all ]; then
  hot_ok=MISS
  [ "${hot_reserved:-0}" = 1 ] && [ "${hot_unavailable:-0}" = 99 ] && [ "${hot_requests:-0}" = 100 ] && hot_ok=PASS
  line "hot: 100 agents on one plot" "1 + 99 unavailable" \
    "${hot_reserved:-?} reserved, ${hot_unavailable:-?} unavailable, $(( ${hot_requests:-0} - ${hot_reserved:-0} - ${hot_unavailable:-0} )) other" "$hot_ok"
fi
if want launch; then
  launch_ok="$(verdict "${launch_p99_ms:-n/a}" 1000 '<')"
  for f in "${failed[@]}"; do [ "$f" = launch ] && launch_ok=MISS; done
  line "launch: ${launch_agents} agents on ${launch_plots} plots, p99" "< 1 s, 0 other" \
    "${launch_p99_ms:-?} ms (max ${launch_max_ms:-?}; ${launch_taken:-?} of ${launch_plots} plots taken once, ${launch_unavailable:-?} unavailable, ${launch_other:-?} other; sold out after ${launch_sold_out_s:-?} s)" "$launch_ok"
fi
if want reads; then
  reads_ok="$(verdict "${reads_read_p99_ms:-n/a}" 50 '<')"
  for f in "${failed[@]}"; do [ "$f" = reads ] && reads_ok=MISS; done
  line "reads: ${plots} plots, counts + page, p99" "< 50 ms" \
    "${reads_read_p99_ms:-?} ms (counts ${reads_counts_p99_ms:-?}, page of 50 ${reads_page_p99_ms:-?}; ${reads_reads:-?} reads by ${readers} readers while 16 agents reserved ${reads_reserved_per_sec:-?} /s)" "$reads_ok"
fi
if [ "$only" = all ]; then
  line "sweep of ${sweep_count}: domain / raw UPDATE" ">= 0.5" \
    "${sweep_ratio:-n/a} (${sweep_domain_per_sec:-?} vs ${sweep_raw_per_sec:-?} /s)" "$(verdict "${sweep_ratio:-n/a}" 0.5 '>=')"
  line "release lag p99 (${lag_count:-?} holds)" "< 2 s" \
    "${lag_p99:-n/a} s (p50 ${lag_p50:-?}, max ${lag_max:-?})" "$(verdict "${lag_p99:-n/a}" 2 '<')"
  line "server peak RSS under load (VmHWM)" "< 100 MB" \
    "${load_rss} MB (then launch's ${launch_agents} connections: ${server_rss}; lag server ${lag_rss}, worker ${worker_rss})" "$(verdict "$load_rss" 100 '<')"
  line "story 2.5: 50 users, ${story_seconds} s" "0 violations" \
    "${story25_reserved:-?} reserved, ${story25_unavailable:-?} unavailable, $(( ${story25_error:-0} + ${story25_transport:-0} )) failed" "$([ "${#failed[@]}" = 0 ] && echo PASS || echo see-below)"
fi
if want queue; then
  queue_ok=PASS
  for f in "${failed[@]}"; do [ "$f" = queue ] && queue_ok=MISS; done
  line "queue: 16 agents on ${queue_plots:-?} plots' lines, ${line_seconds} s" "0 violations" \
    "${queue_waited:-?} waited, ${queue_at_once:-?} at once; ${queue_ended:-?} holds ended, ${queue_with_line:-?} with a line, ${queue_promotions:-?} promotions" "$queue_ok"
  promotions_ok="$(verdict "${promotions_p99:-n/a}" 2 '<')"
  for f in "${failed[@]}"; do [ "$f" = promotions ] && promotions_ok=MISS; done
  line "promotions after ${promotion_count} lapsed holds, p99" "< 2 s, each once" \
    "${promotions_p99:-n/a} s (p50 ${promotions_p50:-?}, max ${promotions_max:-?}; ${promotions_count:-?} promotions, ${promotions_still_active:-?} never ended; ${promotions_lapsed_during_setup:-?} lapsed during the setup)" "$promotions_ok"
fi
line "invariant checks after every run" "0 violations" \
  "${#failed[@]} runs failed" "$([ "${#failed[@]}" = 0 ] && echo PASS || echo MISS)"
if want reserve; then
  printf 'spread over HTTP: reserve p50 %s ms, p99 %s ms; mixed: %s requests, p99 %s ms\n' \
    "${spread_p50:-?}" "${spread_p99:-?}" "${mixed_requests:-?}" "${mixed_p99_ms:-?}"
fi

if [ "${#failed[@]}" -gt 0 ]; then
  printf '\nFAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
