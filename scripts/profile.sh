#!/usr/bin/env bash
# Where the CPU of the durable 3-stage path goes. Runs the throughput
# scenario (bench_runtime --only throughput --runs 3: 3 × 20,000 jobs
# published to a paused pipeline, then run by one node) under a
# system-wide perf profile, with pg_stat_statements loaded, and prints:
#   1. CPU samples per process (node, PostgreSQL backends, nats-server);
#   2. the node's and PostgreSQL's top functions (self time);
#   3. PostgreSQL's statements by total time.
# The profile also covers the publishing of the jobs and the node's warm-up
# (300 jobs); docs/benchmarks.md says how to read it.
#
#   scripts/profile.sh [OUT_DIR]      (default: a new /tmp/troupe-profile-*)
#   PROFILE_ONLY=retry scripts/profile.sh   another scenario of bench_runtime
#                                         (statements: throughput only)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/build.sh >/dev/null
command -v perf >/dev/null || { echo "profile: perf is missing (apt-get install linux-perf)" >&2; exit 1; }
B=${BUILD_DIR:-build}
out=${1:-$(mktemp -d /tmp/troupe-profile-XXXXXX)}
mkdir -p "$out"
# A guest has no hardware counters: the cpu-clock software event samples
# every process alike.
TROUPE_PG_OPTIONS="-c shared_preload_libraries=pg_stat_statements" \
  perf record -a -g -e cpu-clock -F 499 -o "$out/perf.data" -- \
  "$B/bench/bench_runtime" --troupe "$B/troupe" --runs 3 --only "${PROFILE_ONLY:-throughput}" \
  --statements "$out/statements.txt" | tee "$out/figures.md"
# What follows only reads the profile; `head` may cut a report short.
set +e +o pipefail
report() { { perf report -i "$out/perf.data" --stdio --no-children -g none "$@" 2>/dev/null || true; } | grep -v '^#' | sed '/^$/d' | cut -c1-160; }
echo
echo "== CPU samples per process (pid:comm of each thread; swapper is idle) =="
report --sort pid | head -20
# The node's threads take the names of the threads that made them
# (caf.multiplexer, caf.clock): select them by process, the ids of the
# threads still called "troupe" (each process's first thread).
nodes=$(report --sort pid | sed -n 's/.* \([0-9]*\):troupe *$/\1/p' | paste -sd, -)
echo
echo "== the node's top functions (self; processes $nodes) =="
report --pid "$nodes" --sort dso,symbol | head -40
echo
echo "== PostgreSQL's top functions (self) =="
report --comm postgres --sort dso,symbol | head -25
echo
echo "== PostgreSQL statements by total time =="
cat "$out/statements.txt" 2>/dev/null
echo
echo "profile: perf data and figures in $out" >&2
