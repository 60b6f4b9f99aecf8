#!/usr/bin/env bash
# Builds Quiesce and runs it on the embedded SQLite default (data/quiesce.db, created if missing).
# Extra arguments go to the server (try --help). Installs missing build tools first.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/ensure-tools.sh
cargo leptos build
# Local use over plain http: session cookies without the Secure flag. Behind TLS, run the
# binary directly (target/debug/server or a release build) without this.
export QUIESCE_PLAIN_HTTP="${QUIESCE_PLAIN_HTTP:-true}"
# A newcomer sees replication at once: demo peers, a writer and three mirrors (never touches
# existing data; QUIESCE_DEMO=false to skip).
export QUIESCE_DEMO="${QUIESCE_DEMO:-true}"
exec target/debug/server "$@"
