#!/usr/bin/env bash
# The tests of time in the store at the sizes issue 16 names (20,000 jobs
# scheduled ahead, a 60 s backoff outliving every node, 30 s of an
# every-second cron on three nodes) rather than CI's smaller ones. Starts its
# own nats-server and PostgreSQL on 127.0.0.1. About 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/build.sh >/dev/null
TROUPE_FULL=1 "${BUILD_DIR:-build}/tests/runtime/scheduling_test" "$@"
