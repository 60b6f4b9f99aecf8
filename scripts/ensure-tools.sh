#!/usr/bin/env bash
# Installs what building and testing Quiesce needs, only where it is missing, so a second run
# takes seconds. Sourced by scripts/run.sh and scripts/test.sh; safe to run on its own.
#
#   scripts/ensure-tools.sh            tools to build and run
#   scripts/ensure-tools.sh --test     also Chromium and a running Postgres
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

say() { echo "ensure-tools: $*" >&2; }
export PATH="$HOME/.cargo/bin:$PATH"

# The WASM target.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen-cli must equal the wasm-bindgen version in Cargo.lock, patch included.
wb_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$root/Cargo.lock")"
if [[ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wb_version" ]]; then
  say "installing wasm-bindgen-cli $wb_version (about 10 minutes, once)"
  # Not --locked: its lockfile names a crate version the registry no longer serves.
  cargo install wasm-bindgen-cli --version "$wb_version" --force
fi

# cargo-leptos, without its binary downloads (there is no internet here beyond the registries).
if [[ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "0.3.10" ]]; then
  say "installing cargo-leptos 0.3.10 (about 30 minutes, once)"
  cargo install cargo-leptos --version 0.3.10 --locked --features no_downloads --force
fi

# npm packages for the end-to-end tests and wasm-opt (binaryen from npm: Debian's is too old).
stamp="$root/end2end/node_modules/.quiesce-stamp"
lock_sum="$(sha256sum "$root/end2end/package-lock.json" | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_sum" ]]; then
  say "installing npm packages for end2end/"
  (cd "$root/end2end" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  echo "$lock_sum" > "$stamp"
fi
export PATH="$root/end2end/node_modules/.bin:$PATH"

if [[ $want_test == 1 ]]; then
  if [[ ! -x /usr/bin/chromium ]]; then
    say "installing Debian's chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  if ! command -v psql >/dev/null; then
    say "installing postgresql-client"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >/dev/null
  fi
  pg_url="${QUIESCE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  if ! psql "$pg_url" -Atqc 'select 1' >/dev/null 2>&1; then
    if [[ -z "${QUIESCE_TEST_POSTGRES_URL:-}" ]] && command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
      say "starting the local PostgreSQL cluster"
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
      for _ in $(seq 1 30); do psql "$pg_url" -Atqc 'select 1' >/dev/null 2>&1 && break; sleep 1; done
    fi
    psql "$pg_url" -Atqc 'select 1' >/dev/null 2>&1 || {
      say "Postgres is not reachable at ${pg_url%%@*}@…; the tests need it (set QUIESCE_TEST_POSTGRES_URL)"
      exit 1
    }
  fi
  # Postgres sources are read through logical decoding, which needs wal_level=logical. The local
  # cluster this script manages is switched (a restart, once); an external server is left alone
  # and must already have it.
  # Tests run in parallel and each Postgres source holds two slots: the default 10 is too few.
  # Each source read by a running server holds one walsender (its replication stream).
  if [[ "$(psql "$pg_url" -Atqc 'show wal_level')" != "logical" ||
        "$(psql "$pg_url" -Atqc 'show max_replication_slots')" -lt 64 ||
        "$(psql "$pg_url" -Atqc 'show max_wal_senders')" -lt 64 ]]; then
    if [[ -z "${QUIESCE_TEST_POSTGRES_URL:-}" ]] && command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
      say "switching the local PostgreSQL cluster to wal_level=logical, 100 slots and walsenders (restart)"
      psql "$pg_url" -Atqc "ALTER SYSTEM SET wal_level = logical" >/dev/null
      psql "$pg_url" -Atqc "ALTER SYSTEM SET max_replication_slots = 100" >/dev/null
      psql "$pg_url" -Atqc "ALTER SYSTEM SET max_wal_senders = 100" >/dev/null
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main restart
      for _ in $(seq 1 30); do psql "$pg_url" -Atqc 'select 1' >/dev/null 2>&1 && break; sleep 1; done
    fi
    if [[ "$(psql "$pg_url" -Atqc 'show wal_level' 2>/dev/null)" != "logical" ]]; then
      say "the test Postgres (${pg_url%%@*}@…) has wal_level=$(psql "$pg_url" -Atqc 'show wal_level' 2>/dev/null); Postgres sources need wal_level=logical: set it (ALTER SYSTEM SET wal_level = logical) and restart that server"
      exit 1
    fi
  fi
fi
