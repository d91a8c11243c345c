#!/usr/bin/env bash
# The README's test command: installs what is missing, builds with warnings as
# errors, checks formatting and structure (layers, rooms, file and function
# sizes: scripts/structure.py), runs every unit and integration test (the
# integration tests start their own nats-server and PostgreSQL on loopback,
# and one short seed of the chaos suite is CTest label `chaos`), then the unit
# tests of messages, config and actors built with ASan+UBSan, and each
# libFuzzer target for a short while.
#
# Longer runs live in scripts/ (docs/reliability.md): the whole suite under
# ASan+UBSan (scripts/sanitize.sh asan, ~25 min cold build here), TSan
# (scripts/sanitize.sh tsan), longer fuzzing (scripts/fuzz.sh 300), many
# chaos seeds (scripts/chaos.sh --seeds 100).
#
#   FUZZ_SECONDS=N  seconds per fuzz target (default 15; 0 skips fuzzing)
#   SANITIZE=0      skip the ASan+UBSan unit run
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --tests
scripts/format.sh --check
python3 scripts/structure.py
scripts/build.sh
# The JavaScript publisher's client (npm `nats`, pinned by its lockfile),
# for tests/examples; everything else comes from Debian's archive.
(cd examples/publishers/js && npm ci --no-audit --no-fund --loglevel=error)
# The dashboard's browser tests (tests/ui): playwright-core, pinned by its
# lockfile, drives Debian's Chromium; it downloads no browser.
(cd tests/ui && npm ci --no-audit --no-fund --loglevel=error)
(cd "${BUILD_DIR:-build}" &&
  ctest --output-on-failure --timeout 600 -j "${TEST_JOBS:-2}")
if [ "${SANITIZE:-1}" != 0 ]; then
  scripts/sanitize.sh asan-unit
fi
if [ "${FUZZ_SECONDS:-15}" != 0 ]; then
  scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
fi
