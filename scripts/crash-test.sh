#!/usr/bin/env bash
# Crash safety at full size: 10,000 single-payment files and one 100,000-line JSON Lines file,
# ingested by the release binary on its embedded PostgreSQL while it is SIGKILLed five times
# (once 10 %, 30 %, 50 %, 70 % and 90 % of the payments are committed), then restarted to the
# end. Checks: exactly 110,000 payments, no duplicate, every ingest task TERMINATED, every file
# recorded as ingested, no PostgreSQL left running. Prints one JSON line; exits non-zero on
# any failed check. Usage: scripts/crash-test.sh [files] [lines]   (takes a few minutes)
set -euo pipefail
cd "$(dirname "$0")/.."

FILES=${1:-10000}
LINES=${2:-100000}
TOTAL=$((FILES + LINES))
cargo build --release --quiet --bin tributary
BIN=$PWD/target/release/tributary
WORK=$(mktemp -d /tmp/tributary-crash-XXXXXX)
trap 'pkill -KILL -f "$BIN serve --data-dir $WORK" 2>/dev/null || true' EXIT
chmod 755 "$WORK"   # the embedded PostgreSQL runs as `postgres` when we are root
mkdir -p "$WORK/files" "$WORK/config"

echo "writing $FILES files and a $LINES-line file in $WORK" >&2
python3 - "$WORK/files" "$FILES" "$LINES" <<'PY'
import os, sys, time
d, files, lines = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
row = '{{"reference":"{r}","amount":{a},"asset":"EUR/2","type":"PAY-IN","status":"SUCCEEDED","scheme":"visa","createdAt":"2026-01-01T00:00:00Z"}}'
past = time.time() - 120
for i in range(files):
    p = os.path.join(d, f"p{i:06d}.json")
    with open(p, "w") as f:
        f.write(row.format(r=f"file-{i}", a=i) + "\n")
    os.utime(p, (past, past))
p = os.path.join(d, "batch.jsonl")
with open(p, "w") as f:
    for i in range(lines):
        f.write(row.format(r=f"line-{i}", a=i) + "\n")
os.utime(p, (past, past))
PY
cat > "$WORK/config/tributary.toml" <<TOML
[log]
level = "warn"

[[connectors]]
provider = "DUMMY-PAY"
name = "crash"
config = { directory = "$WORK/files", filePollingPeriod = "200ms" }
TOML

PORT=18181
psql_() { psql -h "$WORK/data/postgres" -p 5432 -U postgres -d tributary -Atc "$1" 2>/dev/null; }
count() { psql_ "SELECT count(*) FROM payments" || echo 0; }
postmaster() { head -1 "$WORK/data/postgres/postmaster.pid" 2>/dev/null || true; }
start() {
  (cd "$WORK" && exec "$BIN" serve --data-dir "$WORK/data" --bind "127.0.0.1:$PORT" \
     --config "$WORK/config/tributary.toml" >>"$WORK/serve.log" 2>&1) &
  SERVER=$!
}

kills=0
orphans=0
for pct in 10 30 50 70 90; do
  target=$((TOTAL * pct / 100))
  start
  until [ "$(count)" -ge "$target" ]; do
    kill -0 "$SERVER" 2>/dev/null || { echo "server died" >&2; exit 1; }
    sleep 0.05
  done
  pg=$(postmaster)
  at=$(count)
  kill -KILL "$SERVER"; wait "$SERVER" 2>/dev/null || true
  kills=$((kills + 1))
  for _ in $(seq 1 100); do kill -0 "$pg" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pg" 2>/dev/null; then orphans=$((orphans + 1)); fi
  echo "kill $kills at $at / $TOTAL payments (target $pct %)" >&2
done

start
deadline=$((SECONDS + 900))
until [ "$(count)" -ge "$TOTAL" ] || [ $SECONDS -ge $deadline ]; do sleep 0.2; done
sleep 2   # let the last tasks record their end
payments=$(count)
distinct=$(psql_ "SELECT count(DISTINCT reference) FROM payments")
unfinished=$(psql_ "SELECT count(*) FROM tasks WHERE descriptor->>'key' = 'ingest' AND status <> 'TERMINATED'")
recorded=$(psql_ "SELECT count(*) FROM connector_kv WHERE key LIKE 'file:%' AND value->>'outcome' = 'ingested'")
pg=$(postmaster)
kill -TERM "$SERVER"; wait "$SERVER" 2>/dev/null || true
for _ in $(seq 1 100); do kill -0 "$pg" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pg" 2>/dev/null && orphans=$((orphans + 1))

echo "{\"kills\": $kills, \"payments\": $payments, \"expected\": $TOTAL, \"distinct\": $distinct, \"unfinished_ingest_tasks\": $unfinished, \"files_recorded\": $recorded, \"files_expected\": $((FILES + 1)), \"orphan_postgres\": $orphans}"
[ "$payments" -eq "$TOTAL" ] && [ "$distinct" -eq "$TOTAL" ] && [ "$unfinished" -eq 0 ] \
  && [ "$recorded" -eq $((FILES + 1)) ] && [ "$orphans" -eq 0 ] && rm -rf "$WORK"
