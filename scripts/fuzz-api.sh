#!/usr/bin/env bash
# Schema-driven fuzzing of the HTTP API: schemathesis (pinned) generates valid and invalid
# requests for every operation of /openapi.json and fails on any 5xx. The release binary runs
# on a fresh database (its embedded PostgreSQL, or a fresh database on DATABASE_URL's server)
# with DUMMY-PAY connectors holding payments, accounts, balances and tasks; the fuzzer draws
# path ids from those half of the time, so that requests reach stored rows. Prints one JSON
# line of figures; exits non-zero on any 5xx, a crash or panic of the service, or a PostgreSQL
# left running. Authentication is on: the service knows one static token with both scopes, which
# every request of the fuzzer (and of this script) carries. Usage: scripts/fuzz-api.sh [examples-per-operation]   (default 100; SEED=n;
# CHECKS=…: other schemathesis checks, e.g. response_schema_conformance against the document)
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=4.32.5
EXAMPLES=${1:-100}
VENV=$PWD/target/fuzz-venv
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q " $VERSION$"; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "schemathesis==$VERSION"
fi
cargo build --release --quiet --bin tributary

WORK=$(mktemp -d /tmp/tributary-fuzz-XXXXXX)
mkdir -p "$WORK/files" "$WORK/victim" "$WORK/dirs" "$WORK/report"
cp target/release/tributary "$WORK/"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
API=http://127.0.0.1:$PORT/api/payments

# The fuzzer installs connectors on directories of its own invention: as root, the service runs
# as `nobody` from $WORK, so that it cannot create or write anything outside $WORK and /tmp.
AS=()
if [ "$(id -u)" = 0 ]; then
  chmod 755 "$WORK"
  chown -R nobody:nogroup "$WORK"
  AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi
DB=""
SERVICE_DB=""
if [ -n "${DATABASE_URL:-}" ]; then
  DB=tributary_fuzz_$$
  psql "$DATABASE_URL" -qc "CREATE DATABASE $DB"
  SERVICE_DB=${DATABASE_URL%/*}/$DB
fi

SERVER=""
stop() {
  if [ -n "$SERVER" ] && kill -0 "$SERVER" 2>/dev/null; then
    kill -TERM "$SERVER"
    wait "$SERVER" 2>/dev/null || true
  fi
  SERVER=""
}
cleanup() {
  stop
  [ -n "$DB" ] && psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
}
trap cleanup EXIT

# Payments, accounts and balances for the data endpoints: a connector declared in the settings
# (its id is never handed to the fuzzer, so its rows outlive the fuzzing of uninstall and reset).
python3 - "$WORK/files" <<'PY'
import json, os, sys
d = sys.argv[1]
for i in range(20):
    account = {"reference": f"acc-{i}", "createdAt": f"2026-01-01T00:00:{i:02d}Z",
               "defaultAsset": "EUR/2", "accountName": f"Account {i}", "type": "INTERNAL",
               "metadata": {"k": "v"}}
    balance = {"accountReference": f"acc-{i}", "asset": "EUR/2", "balance": -i * 1000,
               "createdAt": f"2026-01-02T00:00:{i:02d}Z"}
    payment = {"reference": f"pay-{i}", "createdAt": f"2026-01-03T00:00:{i:02d}Z",
               "amount": 10**30 + i, "asset": "EUR/2", "type": "PAY-IN", "status": "SUCCEEDED",
               "scheme": "visa", "sourceAccountId": f"acc-{i}", "metadata": {"order": str(i)}}
    for kind, obj in (("account", account), ("balance", balance), ("payment", payment)):
        with open(os.path.join(d, f"{kind}-{i:02d}.json"), "w") as f:
            json.dump({"kind": kind, kind: obj}, f)
past = os.path.getmtime(d) - 120
for name in os.listdir(d):
    os.utime(os.path.join(d, name), (past, past))
PY
cp "$WORK/files/payment-00.json" "$WORK/victim/"
# A fresh static token for this run; the settings hold only its SHA-256.
TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
TOKEN_SHA256=$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)
AUTH=(-H "Authorization: Bearer $TOKEN")
cat > "$WORK/tributary.toml" <<TOML
[log]
level = "warn"
format = "json"

[[auth.tokens]]
name = "fuzz"
sha256 = "$TOKEN_SHA256"
scopes = ["payments:read", "payments:write"]

[[connectors]]
provider = "DUMMY-PAY"
name = "fuzz-data"
config = { directory = "$WORK/files", filePollingPeriod = "200ms" }
TOML
[ "$(id -u)" = 0 ] && chown -R nobody:nogroup "$WORK"

(cd "$WORK" && exec env ${SERVICE_DB:+DATABASE_URL=$SERVICE_DB} "${AS[@]}" ./tributary serve \
   --config "$WORK/tributary.toml" --data-dir "$WORK/data" --bind "127.0.0.1:$PORT" \
   >>"$WORK/serve.log" 2>&1) &
SERVER=$!
json() { curl -sf "${AUTH[@]}" "$API$1" | python3 -c "import json, sys; d = json.load(sys.stdin); print($2)"; }
until curl -sf "$API/_live" >/dev/null; do
  kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/serve.log" >&2; echo "the service died" >&2; exit 1; }
  sleep 0.2
done
until [ "$(json '/payments?pageSize=100' 'len(d["cursor"]["data"])' 2>/dev/null || echo 0)" -ge 20 ]; do
  sleep 0.2
done
# Two connectors for the fuzzer to reset, pause, reconfigure and uninstall.
for name in fuzz-victim-1 fuzz-victim-2; do
  curl -sf "${AUTH[@]}" -H 'Content-Type: application/json' "$API/connectors/dummy-pay" \
    -d "{\"name\": \"$name\", \"directory\": \"$WORK/victim\", \"filePollingPeriod\": \"1s\"}" >/dev/null
done
sleep 2 # their first poll schedules an ingest task each

ids() { json "$1" "json.dumps([x[\"$2\"] for x in $3])"; }
DATA_ID=$(json /connectors '[c["connectorID"] for c in d["data"] if c["name"] == "fuzz-data"][0]')
VICTIMS=$(ids /connectors connectorID '[c for c in d["data"] if c["name"] != "fuzz-data"]')
TASKS=$(for c in $DATA_ID $(echo "$VICTIMS" | python3 -c 'import json, sys; print(*json.load(sys.stdin))'); do
  ids "/connectors/dummy-pay/$c/tasks?pageSize=100" id 'd["cursor"]["data"]'; done |
  python3 -c 'import json, sys; print(json.dumps(sum((json.loads(l) for l in sys.stdin), [])))')
PAYMENTS=$(ids '/payments?pageSize=100' id 'd["cursor"]["data"]')
ACCOUNTS=$(ids '/accounts?pageSize=100' id 'd["cursor"]["data"]')
DIRS="[\"$WORK/dirs/a\", \"$WORK/dirs/b\"]"
cat > "$WORK/schemathesis.toml" <<TOML
[dictionaries]
providers = { values = ["DUMMY-PAY", "dummy-pay"] }
connectors = { values = $VICTIMS }
filters = { values = ["$DATA_ID"] }
tasks = { values = $TASKS }
payments = { values = $PAYMENTS }
accounts = { values = $ACCOUNTS }
directories = { values = $DIRS }
counts = { values = [0, 1, 2] }

[parameters]
"path.provider" = { dictionary = "providers", probability = 0.5 }
"path.connectorID" = { dictionary = "connectors", probability = 0.5 }
"query.connectorID" = { dictionary = "filters", probability = 0.5 }
"path.taskID" = { dictionary = "tasks", probability = 0.5 }
"path.paymentID" = { dictionary = "payments", probability = 0.5 }
"path.accountID" = { dictionary = "accounts", probability = 0.5 }
# Connectors the fuzzer installs watch directories under \$WORK and generate few files.
"body.directory" = { dictionary = "directories", probability = 1.0 }
"body.numberOfAccountsPreGenerated" = { dictionary = "counts", probability = 1.0 }
"body.numberOfPaymentsPreGenerated" = { dictionary = "counts", probability = 1.0 }
TOML

echo "fuzzing $API with $EXAMPLES examples per operation (work dir $WORK)" >&2
STARTED=$SECONDS
status=0
(cd "$WORK" && "$VENV/bin/schemathesis" --config-file "$WORK/schemathesis.toml" run \
   "http://127.0.0.1:$PORT/openapi.json" --checks "${CHECKS:-not_a_server_error}" \
   --header "Authorization: Bearer $TOKEN" \
   --max-examples "$EXAMPLES" --workers 1 ${SEED:+--seed "$SEED"} --generation-database none \
   --report json,har --report-dir "$WORK/report" --no-color) >&2 || status=$?
DURATION=$((SECONDS - STARTED))

alive=true
kill -0 "$SERVER" 2>/dev/null && curl -sf "$API/_live" >/dev/null || alive=false
PG=$(head -1 "$WORK/data/postgres/postmaster.pid" 2>/dev/null || true)
stop
orphan=false
if [ -n "$PG" ]; then
  for _ in $(seq 1 100); do kill -0 "$PG" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$PG" 2>/dev/null && orphan=true
fi

FIGURES=$(python3 - "$WORK" "$VERSION" "$EXAMPLES" "$DURATION" "$alive" "$orphan" <<'PY'
import glob, json, sys
work, version, examples, duration, alive, orphan = sys.argv[1:]
report = json.load(open(glob.glob(f"{work}/report/json-*.json")[0]))
har = json.load(open(glob.glob(f"{work}/report/har-*.json")[0]))
statuses = [e["response"]["status"] for e in har["log"]["entries"]]
panics = open(f"{work}/serve.log").read().count("panicked")
print(json.dumps({
    "schemathesis": version, "seed": report["seed"], "examples_per_operation": int(examples),
    "operations_tested": report["operations"]["tested"], "test_cases": report["test_cases"]["generated"],
    "failing_cases": report["test_cases"]["with_failures"], "unique_failures": report["test_cases"]["unique_failures"],
    "errors": len(report["errors"]), "requests": len(statuses),
    "responses_5xx": sum(s >= 500 for s in statuses), "responses_401": sum(s == 401 for s in statuses),
    "panics": panics,
    "alive_after": alive == "true", "orphan_postgres": orphan == "true", "seconds": int(duration)}))
PY
)
echo "$FIGURES"
echo "$FIGURES" | python3 -c 'import json, sys; f = json.load(sys.stdin); sys.exit(0 if
  f["failing_cases"] == f["errors"] == f["responses_5xx"] == f["panics"] == 0
  and f["alive_after"] and not f["orphan_postgres"] else 1)' || { echo "fuzzing failed; see $WORK" >&2; exit 1; }
[ "$status" -eq 0 ] || { echo "schemathesis exited $status; see $WORK" >&2; exit 1; }
rm -rf "$WORK"
