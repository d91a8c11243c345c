#!/usr/bin/env bash
# The chaos suite (docs/reliability.md): each seed starts a 3-node cluster
# on a 3-server NATS cluster (replicas 3) and PostgreSQL, submits a mix of
# jobs while faults drawn from the seed hit it (node kills, zombies, kills
# between a side effect and its checkpoint, NATS restarts and losses, leader
# moves, PostgreSQL restarts and outages, partitions, clock jumps, slow
# links to NATS), then judges the run from PostgreSQL and JetStream. One
# verdict line per seed (and, when a server's log shows the broker's
# replicas coming apart, the first such line); a
# failing seed keeps its directory (node logs, server logs, side-effect log)
# and prints the command that replays it.
#
#   scripts/chaos.sh                   10 seeds (1..10)
#   scripts/chaos.sh --seeds 100       seeds 1..100
#   scripts/chaos.sh --seed 42         one seed (replay)
#   --from S  first seed   --jobs N  jobs per seed (1500)
#   --seconds S  load and faults per seed (60)
#   --nats-crash  also SIGKILL nats-servers (nats-server 2.9.10 may then
#                 reset a replica and misdeliver: docs/reliability.md)
#   --gentle-nats only restart nats-servers (SIGTERM) and move leaders: no
#                 silenced server, under which 2.9.10 can strand messages
#   --lenient-stream  messages left in the stream are noted, not failed
#   --restart-broker  restart the nats-servers one at a time before every
#                 verdict (done anyway when the stream stops answering)
#   CHAOS_OUT=dir  where per-seed logs go (/tmp/troupe-chaos-results)
#   TROUPE_CHAOS_FAKETIME=0  no node under libfaketime (no clock jumps)
#   TROUPE_CHAOS_NODE=path  the node binary under test (default: this
#                 build's), e.g. build-asan/troupe after
#                 `scripts/sanitize.sh asan-node`, to name a crash's cause
#   TROUPE_CHAOS_FAKETIME_NODE=path  the binary of the node under
#                 libfaketime (default: this build's troupe_glibc, the node
#                 on glibc's malloc: jemalloc and libfaketime clash)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=10 from=1 jobs=1500 seconds=60 extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds=$2; shift 2 ;;
    --seed) from=$2; seeds=1; shift 2 ;;
    --from) from=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --nats-crash) extra+=(--nats-crash); shift ;;
    --gentle-nats) extra+=(--gentle-nats); shift ;;
    --lenient-stream) extra+=(--lenient-stream); shift ;;
    --restart-broker) extra+=(--restart-broker); shift ;;
    *) echo "chaos.sh: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
  esac
done
scripts/bootstrap.sh >/dev/null
scripts/build.sh >/dev/null
out=${CHAOS_OUT:-/tmp/troupe-chaos-results}
mkdir -p "$out"
pass=0 fail=0
started=$(date +%s)
for ((seed = from; seed < from + seeds; ++seed)); do
  log="$out/seed-$seed.log"
  if "${BUILD_DIR:-build}/tests/chaos/troupe_chaos" --seed "$seed" \
      --jobs "$jobs" --seconds "$seconds" "${extra[@]}" >"$log" 2>&1; then
    pass=$((pass + 1))
    grep '^chaos seed=' "$log" || true
  else
    fail=$((fail + 1))
    grep -A40 '^chaos seed=' "$log" || tail -20 "$log"
    echo "  narration: $log"
  fi
done
echo "chaos: $seeds seeds from $from, $pass passed, $fail failed," \
  "$(( $(date +%s) - started )) s (logs in $out)"
[ "$fail" -eq 0 ]
