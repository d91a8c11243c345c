#!/usr/bin/env bash
# Configures and builds troupe into ${BUILD_DIR:-build} with warnings as errors.
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache keys on paths relative to the checkout, so another clone (CI's)
# reuses this machine's objects.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  # ccache (when installed) only speeds up rebuilds; it changes no output.
  LAUNCHER=()
  if command -v ccache >/dev/null; then
    LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTROUPE_WERROR=ON \
    "${LAUNCHER[@]}" ${CMAKE_EXTRA:-}
fi
cmake --build "$BUILD_DIR" -j "$JOBS"
