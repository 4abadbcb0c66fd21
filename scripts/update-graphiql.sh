#!/usr/bin/env bash
# Fetches the pinned GraphiQL, React and graphql-ws browser builds from the npm
# registry (with npm's own client, which checks each tarball's integrity) and
# writes them to crates/server/assets/graphiql/vendor/, with SOURCES.md saying
# where each file came from, and the packages' licences. The server embeds
# these files at build time: nothing is fetched at run time.
#
#   scripts/update-graphiql.sh          rewrite vendor/ from npm
#   scripts/update-graphiql.sh --check  fail if vendor/ differs from npm
#
# To move to other versions, change the pins below, run the script, and check
# GraphiQL in a browser (`just dev`, and the `graphiql` browser test).
#
# Why these versions: graphiql 4.x is the newest line with a standalone browser
# build (graphiql.min.js, UMD, expecting React and ReactDOM globals); 5.x ships
# only ES modules for a bundler (with Monaco and its web workers). React 19 has
# no UMD build, and GraphiQL 4's bundle is built against React 18's internals,
# so React stays on 18. graphql-ws provides the `graphql-transport-ws` client.
set -euo pipefail
cd "$(dirname "$0")/.."

GRAPHIQL_VERSION=4.1.2
REACT_VERSION=18.3.1
GRAPHQL_WS_VERSION=6.4.2

# package@version, path inside the package's tarball, file name in vendor/
FILES=(
  "graphiql@$GRAPHIQL_VERSION package/graphiql.min.js graphiql.min.js"
  "graphiql@$GRAPHIQL_VERSION package/graphiql.min.css graphiql.min.css"
  "graphiql@$GRAPHIQL_VERSION package/LICENSE LICENSE.graphiql"
  "react@$REACT_VERSION package/umd/react.production.min.js react.production.min.js"
  "react@$REACT_VERSION package/LICENSE LICENSE.react"
  "react-dom@$REACT_VERSION package/umd/react-dom.production.min.js react-dom.production.min.js"
  "react-dom@$REACT_VERSION package/LICENSE LICENSE.react-dom"
  "graphql-ws@$GRAPHQL_WS_VERSION package/umd/graphql-ws.min.js graphql-ws.min.js"
  "graphql-ws@$GRAPHQL_WS_VERSION package/LICENSE.md LICENSE.graphql-ws"
)

check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

command -v npm >/dev/null || { echo "error: npm is missing: install Node.js and npm" >&2; exit 1; }

dest=crates/server/assets/graphiql/vendor
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/out" "$work/packs"

# One `npm pack` per package: it downloads the tarball and checks it against
# the integrity the registry publishes.
declare -A tarball integrity
for spec in $(printf '%s\n' "${FILES[@]}" | awk '{ print $1 }' | sort -u); do
  json="$(cd "$work/packs" && npm pack "$spec" --json --silent)"
  tarball[$spec]="$work/packs/$(node -e 'console.log(JSON.parse(process.argv[1])[0].filename)' "$json")"
  integrity[$spec]="$(node -e 'console.log(JSON.parse(process.argv[1])[0].integrity)' "$json")"
  mkdir -p "$work/unpacked/$spec"
  tar -xzf "${tarball[$spec]}" -C "$work/unpacked/$spec"
done

{
  echo "# Where these files come from"
  echo
  echo "Written by \`scripts/update-graphiql.sh\`; do not edit by hand. Each file is"
  echo "copied unchanged from the npm package named, whose tarball npm checked"
  echo "against the integrity shown."
  echo
  echo "| file | bytes | sha256 | from |"
  echo "|---|---:|---|---|"
  for line in "${FILES[@]}"; do
    read -r spec path name <<<"$line"
    cp "$work/unpacked/$spec/$path" "$work/out/$name"
    size="$(wc -c <"$work/out/$name" | tr -d ' ')"
    sum="$(sha256sum "$work/out/$name" | awk '{ print $1 }')"
    echo "| \`$name\` | $size | \`$sum\` | \`$spec\`, \`${path#package/}\` |"
  done
  echo
  echo "| package | npm integrity |"
  echo "|---|---|"
  for spec in $(printf '%s\n' "${FILES[@]}" | awk '{ print $1 }' | sort -u); do
    echo "| \`$spec\` | \`${integrity[$spec]}\` |"
  done
} >"$work/out/SOURCES.md"

if $check; then
  if diff -r "$dest" "$work/out" >/dev/null 2>&1; then
    echo "$dest matches npm (graphiql $GRAPHIQL_VERSION, react $REACT_VERSION, graphql-ws $GRAPHQL_WS_VERSION)"
    exit 0
  fi
  echo "error: $dest differs from what npm serves for the pinned versions:" >&2
  diff -rq "$dest" "$work/out" >&2 || true
  exit 1
fi

rm -rf "$dest"
mkdir -p "$dest"
cp "$work/out/"* "$dest/"
echo "wrote $dest (graphiql $GRAPHIQL_VERSION, react $REACT_VERSION, graphql-ws $GRAPHQL_WS_VERSION):"
du -b "$dest"/* | sort -rn
