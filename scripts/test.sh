#!/usr/bin/env bash
# The README's test command: installs what is missing, builds with warnings as
# errors, checks formatting, runs the unit tests on the release build, then
# the whole suite (unit and integration tests, which start their own
# nats-server and PostgreSQL on loopback) built with ASan+UBSan, and each
# libFuzzer target for a short while. Longer fuzzing: scripts/fuzz.sh;
# TSan: scripts/sanitize.sh tsan (docs/reliability.md).
#
#   SANITIZE=0  skip the ASan+UBSan suite and run the whole suite on the
#               release build instead (a quicker local loop)
#   FUZZ_SECONDS=N  seconds per fuzz target (default 15; 0 skips fuzzing)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/format.sh --check
scripts/build.sh
if [ "${SANITIZE:-1}" = 0 ]; then
  (cd "${BUILD_DIR:-build}" &&
    ctest --output-on-failure --timeout 600 -j "${TEST_JOBS:-2}")
else
  # The benchmark driver's smoke run needs the release build (the ASan
  # build has no benchmarks).
  (cd "${BUILD_DIR:-build}" &&
    ctest --output-on-failure --timeout 600 -j "${TEST_JOBS:-2}" \
      -L '^(unit|bench)$')
  scripts/sanitize.sh asan
fi
if [ "${FUZZ_SECONDS:-15}" != 0 ]; then
  scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
fi
