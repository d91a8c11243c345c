#!/usr/bin/env bash
# Builds troupe with sanitizers, each mode in its own build directory, and
# runs tests there. Results and known findings: docs/reliability.md.
#
#   scripts/sanitize.sh [asan]   ASan+UBSan (+LeakSanitizer) in build-asan;
#                                the whole CTest suite, integration included
#   scripts/sanitize.sh asan-unit  ASan+UBSan in build-asan-unit; the unit
#                                tests of messages, config and actors (CI)
#   scripts/sanitize.sh asan-node  builds only the node (build-asan/troupe),
#                                for the chaos suite: TROUPE_CHAOS_NODE
#   scripts/sanitize.sh tsan     TSan in build-tsan; the unit tests of
#                                messages, config, actors and runtime
#   scripts/sanitize.sh MODE ARGS...   extra ctest arguments, e.g. -R Submission
#
# Every instrumented process, including the `troupe` children that the
# integration tests start, writes its reports to <build>/sanitizer-reports;
# any report there fails the run, even when the test that started the
# process ignored its exit status or killed it.
#
# Environment: JOBS (build parallelism, default nproc), TEST_JOBS (ctest -j,
# default 2), CXX (default: the system's c++, GCC 12, the compiler troupe is
# built with; clang 14 cannot build runtime/, which captures structured
# bindings in lambdas, a C++20 feature GCC accepts in C++17).
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache keys on paths relative to the checkout, so another clone (CI's)
# reuses this machine's objects.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
MODE=${1:-asan}
[ $# -gt 0 ] && shift
scripts/bootstrap.sh >/dev/null

case "$MODE" in
asan)
  BUILD_DIR=${BUILD_DIR:-build-asan}
  OPTION=-DTROUPE_SANITIZE=ON
  TARGETS=(all)
  CTEST_SELECT=()
  ;;
asan-node)
  BUILD_DIR=${BUILD_DIR:-build-asan}
  OPTION=-DTROUPE_SANITIZE=ON
  TARGETS=(troupe)
  BUILD_ONLY=1
  ;;
asan-unit)
  # CI's share: ASan+UBSan over the unit tests of the lower layers, which
  # build in minutes (the whole suite's cold build takes ~25 min here).
  BUILD_DIR=${BUILD_DIR:-build-asan-unit}
  OPTION=-DTROUPE_SANITIZE=ON
  TARGETS=(messages_test config_test actors_test)
  CTEST_SELECT=(-L unit)
  ;;
tsan)
  BUILD_DIR=${BUILD_DIR:-build-tsan}
  OPTION=-DTROUPE_TSAN=ON
  # The unit tests of every layer (the threaded code lives in runtime/:
  # the blocking pool, the exec attempts, the reaper, the API's decoders),
  # and the binary that the CLI tests run. Integration tests are not built;
  # their <name>_NOT_BUILT placeholders carry no label, so -L unit skips
  # them.
  TARGETS=(troupe messages_test config_test actors_test node_guard_test
           runtime_test exec_engine_test child_reaper_test)
  CTEST_SELECT=(-L unit)
  ;;
*)
  echo "usage: scripts/sanitize.sh [asan|asan-node|asan-unit|tsan] [ctest args...]" >&2
  exit 2
  ;;
esac

ROOT=$PWD
SUPP=$ROOT/scripts/sanitizers
REPORTS=$ROOT/$BUILD_DIR/sanitizer-reports
if command -v llvm-symbolizer >/dev/null; then
  export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer)}
fi

# exitcode=66: some tests expect a child to exit with 1 (ASan's default), so
# a crashing child must not look like an expected failure. log_path: see the
# header; one prefix for all, since ASan and UBSan share the runtime's last
# parsed log_path (files are report.<pid>). Set before building as well,
# since gtest discovery runs the tests.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:exitcode=66:detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=0:print_summary=1:log_path=$REPORTS/report"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:print_summary=1:log_path=$REPORTS/report:suppressions=$SUPP/ubsan.supp"
export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0"
export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1:print_summary=1:log_path=$REPORTS/report:suppressions=$SUPP/tsan.supp"

start=$SECONDS
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  LAUNCHER=()
  if command -v ccache >/dev/null; then
    LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTROUPE_BENCH=OFF "$OPTION" "${LAUNCHER[@]}" ${CMAKE_EXTRA:-}
fi
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" --target "${TARGETS[@]}"
built=$SECONDS
if [ -n "${BUILD_ONLY:-}" ]; then
  echo "sanitize($MODE): built $BUILD_DIR/troupe in $((built - start))s" >&2
  exit 0
fi

set +e
(cd "$BUILD_DIR" && ctest --output-on-failure --timeout 1200 \
  -j "${TEST_JOBS:-2}" "${CTEST_SELECT[@]}" "$@")
rc=$?
set -e
done_at=$SECONDS

mapfile -t reports < <(find "$REPORTS" -type f | sort)
if [ ${#reports[@]} -gt 0 ]; then
  for r in "${reports[@]}"; do
    echo "==== $r"
    cat "$r"
  done
  echo "sanitize($MODE): ${#reports[@]} sanitizer report(s), see above" >&2
  [ "$rc" -eq 0 ] && rc=1
fi
echo "sanitize($MODE): build $((built - start))s, tests $((done_at - built))s, exit $rc" >&2
exit "$rc"
