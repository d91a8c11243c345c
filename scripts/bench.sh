#!/usr/bin/env bash
# Benchmarks troupe against its ceilings on this machine and records the
# results. Starts its own nats-server and PostgreSQL on 127.0.0.1 (nothing
# else is touched). Every figure is the median of several runs (min, max).
#
#   scripts/bench.sh            full run (~5-8 minutes), rewrites the
#                               "Latest run" section of docs/benchmarks.md
#   scripts/bench.sh --quick    smoke run (seconds, 1 run, small counts);
#                               prints the table, records nothing
#   RUNS=5 scripts/bench.sh     more runs per figure
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
scripts/bootstrap.sh
scripts/build.sh >/dev/null
B=${BUILD_DIR:-build}
RUNS=${RUNS:-3}
out=$(mktemp -d /tmp/troupe-bench-out-XXXXXX)
trap 'rm -rf "$out"' EXIT

args=(--troupe "$B/troupe" --runs "$RUNS" --markdown "$out/runtime.md")
parked=100000
micro_time=0.5
if [ "$QUICK" = 1 ]; then
  args+=(--quick)
  parked=10000
  micro_time=0.05
fi
echo "bench: end-to-end scenarios and ceilings" >&2
"$B/bench/bench_runtime" "${args[@]}"

echo "bench: parked jobs (RSS per job waiting for a 10-minute retry)" >&2
parked_line=""
for i in $(seq 1 $([ "$QUICK" = 1 ] && echo 1 || echo "$RUNS")); do
  v=$("$B/bench/bench_parked_jobs" "$parked" | sed -n 's/.*after malloc_trim .* \([0-9.]*\) KiB per parked job/\1/p')
  parked_line="$parked_line $v"
done
echo "parked jobs ($parked): KiB per job, each run:$parked_line"

echo "bench: micro benchmarks" >&2
"$B/bench/bench_micro" --benchmark_min_time="$micro_time" \
  --benchmark_format=console 2>/dev/null | grep -E '^(BM_|-|Benchmark)' | tee "$out/micro.txt"

[ "$QUICK" = 1 ] && exit 0

# Record: machine, versions, command, date, and the tables.
sorted=$(tr ' ' '\n' <<<"$parked_line" | sed '/^$/d' | sort -n)
median=$(sed -n "$(( ($(wc -l <<<"$sorted") + 1) / 2 ))p" <<<"$sorted")
{
  echo "<!-- bench:begin (written by scripts/bench.sh; do not edit by hand) -->"
  echo "## Latest run"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "- machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)"
  echo "- versions: $(nats-server --version 2>/dev/null | head -1), PostgreSQL $("$(ls -d /usr/lib/postgresql/15/bin)"/postgres --version | awk '{print $3}'), CAF $(dpkg-query -W -f='${Version}' libcaf-dev 2>/dev/null), nats.c $(dpkg-query -W -f='${Version}' libnats-dev 2>/dev/null), libpqxx $(dpkg-query -W -f='${Version}' libpqxx-dev 2>/dev/null)"
  echo "- command: \`RUNS=$RUNS scripts/bench.sh\` (nats-server, PostgreSQL and the node share the machine)"
  echo
  # The figures' table, the parked row at its end, then the targets table.
  sed '/^Round two/,$d' "$out/runtime.md" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
  echo "| parked | RSS per job waiting for a 10-minute retry ($parked jobs, in-process) | $median | $(head -1 <<<"$sorted") | $(tail -1 <<<"$sorted") | KiB |  |"
  echo
  sed -n '/^Round two/,$p' "$out/runtime.md"
  echo
  echo "Micro benchmarks (Google Benchmark, \`build/bench/bench_micro\`):"
  echo
  echo '```'
  cat "$out/micro.txt"
  echo '```'
} > "$out/section.md"
{
  echo
  python3 scripts/bench_compare.py docs/benchmarks.md "$out/section.md"
  echo "<!-- bench:end -->"
} >> "$out/section.md"
python3 - "$out/section.md" docs/benchmarks.md <<'PY'
import re, sys
section = open(sys.argv[1]).read().rstrip() + "\n"
doc = open(sys.argv[2]).read()
pat = re.compile(r"<!-- bench:begin.*?<!-- bench:end -->\n?", re.S)
doc = pat.sub(lambda m: section, doc) if pat.search(doc) else doc.rstrip() + "\n\n" + section
open(sys.argv[2], "w").write(doc)
PY
echo "bench: recorded in docs/benchmarks.md" >&2
