#!/usr/bin/env bash
# Graceful shutdown at full size: the release `tributary serve`, on its embedded PostgreSQL,
# ingests 1,000 JSON Lines files of 1,200 lines (1.2 million payments) through DUMMY-PAY; once
# every file has its ingest task and all 50 stream permits (DUMMY-PAY's STREAMS) are taken, it gets
# SIGTERM. Checks: exit 0 within 10 s, no PostgreSQL left, no task FAILED or STOPPED by the
# shutdown, every task that was waiting still live; then a restart ingests the rest, every
# payment exactly once. It is tests/it/sigterm.rs at a larger size (TRIBUTARY_SIGTERM_FILES,
# TRIBUTARY_SIGTERM_LINES), run on the release build. Prints one JSON line of figures; exits
# non-zero on any failed check.
# Usage: scripts/sigterm-test.sh [files] [lines]   (a couple of minutes once built)
set -euo pipefail
cd "$(dirname "$0")/.."

FILES=${1:-1000}
LINES=${2:-1200}
TRIBUTARY_SIGTERM_FILES=$FILES TRIBUTARY_SIGTERM_LINES=$LINES \
  exec scripts/full-size-test.sh \
  sigterm::sigterm_under_load_exits_fast_keeps_statuses_and_resumes_every_payment_once \
  "SIGTERM test: $FILES files of $LINES lines"
