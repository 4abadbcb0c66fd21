#!/usr/bin/env bash
# `just dev`: builds the server and the worker, migrates,
# seeds the demo workspace, starts the worker in the background and the server
# in the foreground, and stops the worker when the server exits.
set -euo pipefail
cd "$(dirname "$0")/.."

export HOLDFAST_LISTEN="${HOLDFAST_LISTEN:-127.0.0.1:8080}"
bin="${CARGO_TARGET_DIR:-target}/debug"

cargo build --bin holdfast-server --bin holdfast-worker

"$bin/holdfast-server" migrate
echo
demo="$("$bin/holdfast-server" seed-demo)" && echo "$demo"
echo

"$bin/holdfast-worker" &
worker_pid=$!
trap 'kill "$worker_pid" 2>/dev/null || true; wait "$worker_pid" 2>/dev/null || true' EXIT

# The token goes in the link's fragment, which the browser keeps to itself:
# the page reads it, and it never reaches the server's logs.
agent_token="$(awk '$1 == "SALES_AGENT" { print $NF; exit }' <<<"$demo")"
manager_token="$(awk '$1 == "MANAGER" { print $NF; exit }' <<<"$demo")"
echo "GraphiQL: http://${HOLDFAST_LISTEN}/graphql#token=${agent_token}  (as Alice, a demo agent: her token is in the Headers pane; works offline)"
echo "Board:    http://${HOLDFAST_LISTEN}/board#token=${agent_token}  (as Alice)"
echo "          http://${HOLDFAST_LISTEN}/board#token=${manager_token}  (as Max, a manager: every agent's holds and buyers, and Extend)"
echo "Stop with Ctrl-C."
echo
# Not exec: the trap above must run when the server exits.
"$bin/holdfast-server" serve
