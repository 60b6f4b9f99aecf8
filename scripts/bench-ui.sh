#!/usr/bin/env bash
# UI benchmark (prints figures; not part of the tests): builds the release site, starts the
# release server with the demo on a fresh SQLite catalog, and runs end2end/bench/ui.mjs against it:
# asset sizes, state-change-to-page latency with many pages open, and wrk on the maintenance page.
#   BENCH_PAGES=100 BENCH_CHANGES=100 BENCH_WRK_SECONDS=10 scripts/bench-ui.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/ensure-tools.sh --test
command -v wrk >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
# Only this build's assets in the site directory: the sizes below add up every file in it.
rm -rf target/site
cargo leptos build --release --precompress
dir="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$dir"' EXIT
export QUIESCE_DATABASE_URL="sqlite://$dir/catalog.db" QUIESCE_PLAIN_HTTP=true QUIESCE_LOG=warn
export BENCH_USER=bench BENCH_PASSWORD="ui load test secret $RANDOM$RANDOM"
QUIESCE_PASSWORD="$BENCH_PASSWORD" target/release/server user create --username bench --role operator >/dev/null
port=$((20000 + RANDOM % 20000))
# The browsers below share one session, as if one person had 100 tabs open: the per-session cap
# on live streams (8 by default) is lifted for the benchmark only.
QUIESCE_LIVE_MAX_STREAMS_PER_SESSION=1000 QUIESCE_DEMO=true QUIESCE_DATA_DIR="$dir" QUIESCE_LISTEN="127.0.0.1:$port" QUIESCE_SITE_ROOT=target/site \
  target/release/server &
pid=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
echo "server RSS idle: $(awk '/VmRSS/ {print $2 " kB"}' /proc/$pid/status)"
QUIESCE_BASE_URL="http://127.0.0.1:$port" QUIESCE_SITE_ROOT=target/site node end2end/bench/ui.mjs
echo "server RSS after: $(awk '/VmRSS/ {print $2 " kB"}' /proc/$pid/status)"
