#!/usr/bin/env bash
# Runs one integration test at full size on the release build and prints its JSON line of
# figures: the shared body of scripts/outage-test.sh and scripts/sigterm-test.sh, which pass
# the test's name and its size as environment variables.
# Usage: VAR=value … scripts/full-size-test.sh <test::name> <label>
set -euo pipefail
cd "$(dirname "$0")/.."

TEST=$1
LABEL=$2
OUT=$(mktemp /tmp/tributary-full-size-XXXXXX.log)
trap 'rm -f "$OUT"' EXIT

echo "building the release test binary (the first time takes a while)" >&2
cargo test --release --quiet --test it --no-run >&2
echo "$LABEL" >&2
status=0
cargo test --release --quiet --test it -- --exact --nocapture "$TEST" >"$OUT" 2>&1 || status=$?
if ! grep '^{"' "$OUT"; then
  cat "$OUT" >&2
  echo "FAILED (no figures)" >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then
  cat "$OUT" >&2
  echo "FAILED" >&2
  exit "$status"
fi
