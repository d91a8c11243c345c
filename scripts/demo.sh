#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs the
# main job (a local cluster processing real jobs, with progress and a summary).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/build.sh
exec build/troupe dev --dir .troupe/dev --demo "${DEMO_JOBS:-2000}" --exit
