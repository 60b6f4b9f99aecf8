#!/usr/bin/env bash
# Runs every test: formatting and lints, unit tests, the storage contract on SQLite and Postgres,
# and the end-to-end suite in Chromium on both databases. Installs what is missing first.
# Postgres: QUIESCE_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/ensure-tools.sh --test

step() { echo; echo "=== $* ==="; }

step "format"
cargo fmt --all --check

step "lints (server build)"
cargo clippy -p quiesce-core -p app -p server --all-targets --features quiesce-core/testing -- -D warnings
step "lints (browser build)"
cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings

step "unit, storage contract and server tests (SQLite and Postgres)"
cargo test -p quiesce-core -p app -p server --features quiesce-core/testing

step "build the site"
cargo leptos build

step "end-to-end (Chromium; SQLite and Postgres)"
node end2end/run.mjs
