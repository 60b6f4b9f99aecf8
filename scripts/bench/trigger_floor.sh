#!/usr/bin/env bash
# What a row-level capture trigger costs pgbench's writers, whatever reads the log: pgbench -c 4
# on `pgbench -i -s 10`, with no trigger, with the trigger fallback's change log as the engine
# installs it (id primary key, xid index, the capture function's shape), and with the same
# triggers writing to a log with no index at all. No engine runs: this is the floor under the
# trigger fallback's figure in capture_bench. Prints tps and the ratio to the run without
# triggers, round by round (runs alternate: the machine's pace drifts).
#
# Usage: scripts/bench/trigger_floor.sh [rounds] [seconds]   (Postgres from
# QUIESCE_TEST_POSTGRES_URL, default the local server as postgres; makes and drops a database)
set -euo pipefail
rounds=${1:-2}
seconds=${2:-15}
base=${QUIESCE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
server=${base%/*}
db=quiesce_trigger_floor_$$
url="$server/$db"
psql -q "$base" -c "CREATE DATABASE $db"
trap 'psql -q "$base" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT

# The change log and one capture function per keyed table, as peer/postgres.rs writes them
# (tables of integers and fixed text: no settings check).
install() {
  psql -q "$url" <<'SQL'
CREATE TABLE _quiesce_changelog (
  id BIGSERIAL PRIMARY KEY, tbl TEXT NOT NULL, op TEXT NOT NULL, pk JSON NOT NULL, row JSON,
  created_at BIGINT NOT NULL, xid xid8 NOT NULL DEFAULT pg_current_xact_id());
CREATE INDEX _quiesce_changelog_xid ON _quiesce_changelog (xid);
SQL
  for t in accounts:aid branches:bid tellers:tid; do
    local tbl=pgbench_${t%%:*} k=${t##*:}
    local ins="INSERT INTO public._quiesce_changelog (tbl, op, pk, row, created_at) VALUES ('$tbl'"
    local at="(date_part('epoch', clock_timestamp()) * 1000)::bigint"
    psql -q "$url" <<SQL
CREATE OR REPLACE FUNCTION _c_$tbl() RETURNS trigger LANGUAGE plpgsql AS \$fn\$
DECLARE old_key json; new_key json;
BEGIN
  IF TG_OP = 'INSERT' THEN
    $ins, 'I', json_build_array(NEW.$k), to_json(NEW::text), $at);
  ELSIF TG_OP = 'DELETE' THEN
    $ins, 'D', json_build_array(OLD.$k), to_json(OLD::text), $at);
  ELSE
    old_key := json_build_array(OLD.$k); new_key := json_build_array(NEW.$k);
    IF old_key::text IS DISTINCT FROM new_key::text THEN
      $ins, 'D', old_key, to_json(OLD::text), $at);
    END IF;
    $ins, 'U', new_key, to_json(NEW::text), $at);
  END IF;
  RETURN NULL;
END \$fn\$;
CREATE TRIGGER _q_$tbl AFTER INSERT OR UPDATE OR DELETE ON $tbl FOR EACH ROW EXECUTE FUNCTION _c_$tbl();
SQL
  done
}

run() {
  pgbench -i -q -s 10 "$url" >/dev/null 2>&1
  psql -q "$url" -c "DROP TABLE IF EXISTS _quiesce_changelog CASCADE" >/dev/null 2>&1
  case $1 in
    none) ;;
    triggers) install ;;
    no-index) install
      psql -q "$url" -c "DROP INDEX _quiesce_changelog_xid" \
        -c "ALTER TABLE _quiesce_changelog DROP CONSTRAINT _quiesce_changelog_pkey" ;;
  esac
  psql -q "$url" -c checkpoint
  pgbench -n -c 4 -j 2 -T "$seconds" "$url" 2>/dev/null | awk '/^tps/ {print $3}'
}

echo "pgbench -c 4 -j 2 -T $seconds on pgbench -i -s 10: capture triggers, nobody reading"
for r in $(seq "$rounds"); do
  none=$(run none)
  printf '  round %s: %-34s %8.1f tps\n' "$r" "no triggers" "$none"
  for v in triggers no-index; do
    tps=$(run $v)
    label=$([ $v = triggers ] && echo "capture triggers (as installed)" || echo "same triggers, log without index")
    printf '  round %s: %-34s %8.1f tps  %.2fx\n' "$r" "$label" "$tps" "$(awk -v a="$tps" -v b="$none" 'BEGIN { print a / b }')"
  done
done
