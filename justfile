# holdfast: `just` lists the recipes.

set shell := ["bash", "-euo", "pipefail", "-c"]

default:
    @just --list

# Run the service with demo data: migrate, seed a demo workspace, start the worker and the server (GraphiQL ready)
dev: services
    scripts/dev.sh

# Make sure PostgreSQL and Redis are running (local servers, or docker compose)
services:
    scripts/services.sh

# Create the database if needed and apply every pending migration
migrate: services
    cargo run -q --bin holdfast-server -- migrate

# Run the whole test suite (needs PostgreSQL and Redis; starts them if it can,
# installs cargo-nextest and the browser tests' Chromium and npm packages if it
# can, and says what is missing when it cannot)
test: services
    command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked
    scripts/e2e-setup.sh
    cargo nextest run --workspace --profile ci

# Format, lint (warnings are errors) and test
check:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    just test

# Benchmarks and load test (see docs/BENCHMARKS.md)
bench: services
    scripts/bench.sh

# Remake docs/board.png, the README's screenshot, with the board's browser test
board-screenshot:
    cargo build --bin holdfast-server --bin holdfast-worker
    HOLDFAST_BOARD_SCREENSHOT=docs/board.png node e2e/board.test.mjs

# Write the server's GraphQL SDL to schema.graphql
schema:
    cargo run -q --bin holdfast-server -- print-schema > schema.graphql
