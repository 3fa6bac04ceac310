#!/usr/bin/env bash
# A 15-second database outage in the middle of ingestion, at size: tests/it/outage.rs run on
# the release build with TRIBUTARY_OUTAGE_SECS and TRIBUTARY_OUTAGE_FILES. The service talks to
# PostgreSQL through a TCP proxy that the test cuts (every connection dropped, new ones
# refused) once ingestion has started; half the files are dropped before the cut, half during
# it. Checks: the service stays up (/_live 200 throughout), /_health answers 503 during the
# outage and 200 after, tasks retry (retry counter > 0) and none fails or panics, every payment
# is there exactly once. Uses DATABASE_URL's server when set, else an embedded PostgreSQL in a
# temporary directory. Prints one JSON line of figures; exits non-zero on any failed check.
# Usage: scripts/outage-test.sh [seconds] [files]   (defaults 15 and 3,000)
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${1:-15}
FILES=${2:-3000}
TRIBUTARY_OUTAGE_SECS=$SECS TRIBUTARY_OUTAGE_FILES=$FILES \
  exec scripts/full-size-test.sh \
  outage::ingestion_survives_a_database_outage_with_every_payment_once \
  "outage test: ${SECS} s cut, $FILES files"
