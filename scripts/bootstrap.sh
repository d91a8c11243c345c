#!/usr/bin/env bash
# Installs everything troupe needs from Debian 12's archive, and nothing from
# anywhere else. Idempotent and quick when everything is already present.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config clang-format
  libcaf-dev libpqxx-dev libnats-dev nats-server libssl-dev
  libspdlog-dev postgresql-15 postgresql-client-15
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev libcpp-httplib-dev
  libedit-dev python3 python3-prometheus-client procps openssl curl
  # The node's allocator (docs/benchmarks.md, session 19).
  libjemalloc-dev
  # scripts/sanitize.sh and scripts/fuzz.sh: clang with its sanitizer and
  # libFuzzer runtimes, and llvm for llvm-symbolizer (readable reports).
  clang libclang-rt-14-dev llvm
  # Rebuilds (release, ASan, fuzz) reuse objects across checkouts.
  ccache
  # scripts/chaos.sh: a clock jump on one node (LD_PRELOAD of libfaketime).
  faketime libfaketime
  # examples/ingest: PDF text (pdftotext), the store stage's PostgreSQL
  # driver; examples/stages/troupe_stage.sh: jq.
  poppler-utils python3-psycopg2 jq
  # examples/publishers: the C publisher's JSON (cJSON), the Go publisher
  # (nats.go from Debian).
  libcjson-dev golang-go golang-github-nats-io-go-nats-dev
)
# examples/publishers/js: Node.js and npm (Debian's, unless a node is
# already installed).
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
  PACKAGES+=(nodejs npm)
fi
# --tests (scripts/test.sh): the dashboard's browser tests run in Debian's
# Chromium and Firefox ESR (tests/ui), which the node itself does not need.
if [ "${1:-}" = "--tests" ]; then
  PACKAGES+=(chromium firefox-esr)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
# Debian's postgresql package may start a cluster on 5432 where an init
# system exists; troupe never uses it (it runs its own on loopback ports).
echo "bootstrap: done"
