#!/usr/bin/env bash
# The README's test command: installs what is missing, builds with warnings as
# errors, checks formatting, and runs every unit and integration test. The
# integration tests start their own nats-server and PostgreSQL on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/format.sh --check
scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 600 -j "${TEST_JOBS:-2}"
