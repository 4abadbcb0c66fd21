#!/usr/bin/env bash
# Installs what the Node tests of e2e/ (the board and GraphiQL in Chromium,
# introspection with graphql-js; run by the `board` test suite of
# holdfast-server) need: Debian's chromium, and playwright-core and graphql
# from e2e/package-lock.json. Fails loudly, naming what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

chromium="${HOLDFAST_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  if command -v apt-get >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing chromium (apt-get)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium
  fi
  if [ ! -x "$chromium" ]; then
    echo "error: Chromium is missing at $chromium and apt-get could not install it;" >&2
    echo "       install Debian's chromium package, or set HOLDFAST_CHROMIUM to a Chromium binary" >&2
    exit 1
  fi
fi
"$chromium" --version

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "error: node and npm are missing: install Node.js 18+ (apt-get install nodejs npm)" >&2
  exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 18 ]; then
  echo "error: Node.js $(node --version) is too old: the browser test needs 18+" >&2
  exit 1
fi

# Only the library: Playwright drives the system's chromium, it downloads no browser.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix e2e --no-audit --no-fund
for package in playwright-core graphql; do
  test -f "e2e/node_modules/$package/package.json" || {
    echo "error: npm ci did not install $package into e2e/node_modules" >&2
    exit 1
  }
done
echo "Node tests ready: chromium $chromium, node $(node --version), playwright-core $(node -p 'require("./e2e/node_modules/playwright-core/package.json").version'), graphql $(node -p 'require("./e2e/node_modules/graphql/package.json").version')"
