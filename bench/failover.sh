#!/usr/bin/env bash
# Failover with default settings (failure_timeout 5 s, ack_wait 30 s): three
# nodes run 150 jobs of a 30 s stage; the node holding the most is
# SIGKILLed; prints the time from the kill until every job it held runs
# again on a live node (its row leased by another node), RUNS times.
#
#   bench/failover.sh [RUNS]     (default 3; needs build/troupe and psql)
#
# Starts its own servers with `troupe dev --servers-only` on the fixed
# ports 4222 and 55432: run it on a machine where nothing else uses them.
set -euo pipefail
RUNS=${1:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TROUPE=$ROOT/build/troupe
PSQL=$(command -v psql || echo /usr/lib/postgresql/15/bin/psql)
DIR=$(mktemp -d /tmp/troupe-failover.XXXXXX)
PG=postgresql://postgres@127.0.0.1:55432/troupe
declare -A NODES=()
cleanup() {
  kill "${NODES[@]}" "${SERVERS:-}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
q() { "$PSQL" -qtAX "$PG" -c "$1"; }
now_ms() { date +%s%3N; }

"$TROUPE" dev --servers-only --dir "$DIR" > "$DIR/servers.log" 2>&1 &
SERVERS=$!
timeout 90 bash -c "until grep -q 'servers only' $DIR/servers.log; do sleep 0.2; done"

cat > "$DIR/node.toml" <<TOML
[node]
http = "127.0.0.1:0"
[nats]
url = "nats://127.0.0.1:4222"
[postgres]
url = "$PG"
[pipelines.hold]
stages = [ { name = "wait", kind = "sleep", duration = "30s" } ]
TOML

start_node() {
  "$TROUPE" node --config "$DIR/node.toml" --node-id "$1" \
    >> "$DIR/$1.log" 2>&1 &
  NODES[$1]=$!
  timeout 60 bash -c "until grep -q ': ready' $DIR/$1.log; do sleep 0.2; done"
}
for n in fo-1 fo-2 fo-3; do start_node "$n"; done

for run in $(seq 1 "$RUNS"); do
  q "select count(troupe.enqueue('hold', '{}', 'fo-$run-' || i))
     from generate_series(1, 150) i" > /dev/null
  timeout 60 bash -c "until [ \"\$($PSQL -qtAX $PG -c \"select count(*) from jobs
    where job_id like 'fo-$run-%' and state = 'running'\")\" = 150 ]; do sleep 0.2; done"
  # lease_owner is '<node id>#<incarnation>'.
  victim=$(q "select split_part(lease_owner, '#', 1) from jobs
              where job_id like 'fo-$run-%' group by 1 order by count(*) desc
              limit 1")
  held=$(q "select count(*) from jobs where job_id like 'fo-$run-%'
            and split_part(lease_owner, '#', 1) = '$victim'")
  kill -9 "${NODES[$victim]}"
  t0=$(now_ms)
  until [ "$(q "select count(*) from jobs where job_id like 'fo-$run-%'
                and state = 'running'
                and split_part(lease_owner, '#', 1) <> '$victim'")" = 150 ]; do
    sleep 0.1
  done
  t1=$(now_ms)
  echo "run $run: $victim held $held of 150 jobs; all running again on live" \
       "nodes $((t1 - t0)) ms after the kill"
  start_node "$victim"
  timeout 90 bash -c "until [ \"\$($PSQL -qtAX $PG -c \"select count(*) from jobs
    where job_id like 'fo-$run-%' and state <> 'succeeded'\")\" = 0 ]; do sleep 0.5; done"
done
