#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs the
# main job on a local cluster with visible progress and a summary: first
# the document-ingestion example (examples/ingest: real files through six
# stages into PostgreSQL, then a search), then the synthetic demo (2,000
# jobs with transient failures and poison; DEMO_JOBS=0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/build.sh
echo
echo "== 1/2: document ingestion (examples/ingest)"
examples/ingest/demo.sh
if [ "${DEMO_JOBS:-2000}" != 0 ]; then
  echo
  echo "== 2/2: ${DEMO_JOBS:-2000} synthetic jobs (transient failures, poison)"
  exec build/troupe dev --dir .troupe/dev --demo "${DEMO_JOBS:-2000}" --exit
fi
