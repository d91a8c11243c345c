#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang, ASan+UBSan) in build-fuzz and
# runs each for a bounded time, one after the other. Exits non-zero if any
# target found a crash, a sanitizer report, a hang or a broken property.
#
#   scripts/fuzz.sh [seconds] [target...]   default 60 s per target; targets
#                                           are submission, event, heartbeat,
#                                           config, delivery, untrusted_json
#                                           (default: all)
#
# Seeds are read from fuzz/corpus/<target>/ (never written); what the fuzzer
# learns goes to a scratch corpus, FUZZ_WORK (default /tmp/troupe-fuzz), so
# that repeated runs build on each other without touching the tree. Crash
# inputs are written to fuzz/crashes/<target>-crash-<sha1>: minimise one with
#   build-fuzz/fuzz/<target>_fuzzer -minimize_crash=1 -runs=100000 FILE
# and turn it into a regression test under tests/ (see docs/reliability.md).
#
# Environment: FUZZ_MAX_LEN (default 65536), BUILD_DIR (default build-fuzz),
# JOBS (build parallelism, default nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache keys on paths relative to the checkout, so another clone (CI's)
# reuses this machine's objects.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
SECONDS_EACH=${1:-60}
[ $# -gt 0 ] && shift
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(submission event heartbeat config delivery untrusted_json)
BUILD_DIR=${BUILD_DIR:-build-fuzz}
WORK=${FUZZ_WORK:-/tmp/troupe-fuzz}
MAX_LEN=${FUZZ_MAX_LEN:-65536}
scripts/bootstrap.sh >/dev/null

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  LAUNCHER=()
  if command -v ccache >/dev/null; then
    LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  CXX=${CXX:-clang++} cmake -S . -B "$BUILD_DIR" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTROUPE_FUZZ=ON -DTROUPE_TESTS=OFF \
    -DTROUPE_BENCH=OFF "${LAUNCHER[@]}" ${CMAKE_EXTRA:-}
fi
cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" --target fuzzers

if command -v llvm-symbolizer >/dev/null; then
  export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer)}
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
mkdir -p fuzz/crashes

# One of libFuzzer's final stats (-print_final_stats) from the log $log.
stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }

failed=()
printf '%-11s %6s %10s %8s %7s %6s  %s\n' target secs execs exec/s corpus cov result
for t in "${TARGETS[@]}"; do
  bin=$BUILD_DIR/fuzz/${t}_fuzzer
  if [ ! -x "$bin" ]; then
    echo "fuzz: no target '$t'" >&2
    exit 2
  fi
  dict=fuzz/json.dict
  [ "$t" = config ] && dict=fuzz/toml.dict
  mkdir -p "$WORK/$t"
  log=$WORK/$t.log
  start=$SECONDS
  set +e
  "$bin" -max_total_time="$SECONDS_EACH" -max_len="$MAX_LEN" -timeout=25 \
    -rss_limit_mb=2048 -print_final_stats=1 -dict="$dict" \
    -artifact_prefix="fuzz/crashes/$t-" "$WORK/$t" "fuzz/corpus/$t" \
    >"$log" 2>&1
  rc=$?
  set -e
  # The last status line (none after a crash during corpus loading).
  done_line=$(grep -E '^#[0-9]+[[:space:]]' "$log" | tail -1 || true)
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$done_line")
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
  result=ok
  if [ "$rc" -ne 0 ]; then
    result="FAILED (exit $rc, log $log)"
    failed+=("$t")
  fi
  printf '%-11s %6s %10s %8s %7s %6s  %s\n' "$t" "$((SECONDS - start))" \
    "$(stat number_of_executed_units)" "$(stat average_exec_per_sec)" \
    "${corp:-?}" "${cov:-?}" "$result"
  if [ "$rc" -ne 0 ]; then
    # The report: from the first sanitizer or libFuzzer error line on.
    sed -n '/^==[0-9]*==\|^SUMMARY\|runtime error\|fuzz property violated\|^ALARM\|^MS: /,$p' "$log" |
      head -60 >&2
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]} (inputs in fuzz/crashes/)" >&2
  exit 1
fi
