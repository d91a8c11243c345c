#!/usr/bin/env bash
# Fan-out and fan-in of child jobs (docs/workflows.md), measured end to end:
# one node, a parent whose first stage spawns N children of a noop pipeline,
# then a stage that counts their results. Prints the time to fan out (the
# spawn committed), the time until the last child ended, the time from the
# last child's end to the parent's end (the join), the node's memory while
# the parent waits, and the rows the family left in PostgreSQL.
#
#   bench/fanout.sh [N]          (default 10000; needs build/troupe, jq, psql)
#
# Starts its own servers with `troupe dev --servers-only` on the fixed
# ports 4222 and 55432: run it on a machine where nothing else uses them.
set -euo pipefail
N=${1:-10000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TROUPE=$ROOT/build/troupe
PSQL=$(command -v psql || echo /usr/lib/postgresql/15/bin/psql)
DIR=$(mktemp -d /tmp/troupe-fanout.XXXXXX)
PG=postgresql://postgres@127.0.0.1:55432/troupe
cleanup() { kill "${NODE:-}" "${SERVERS:-}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

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
[[pipelines.fan.stages]]
name = "split"
kind = "exec"
spawn = true
max_children = 100000
command = ["jq", "-c", "{spawn: [range(.payload.n) | {pipeline: \"leaf\", payload: {i: .}}]}"]
[[pipelines.fan.stages]]
name = "count"
kind = "exec"
command = ["jq", "-c", "{children: (.previous.split.children | length)}"]
[pipelines.leaf]
max_in_flight = 200
stages = [ { name = "only", kind = "noop" } ]
TOML

"$TROUPE" node --config "$DIR/node.toml" --node-id fan-1 > "$DIR/node.log" 2>&1 &
NODE=$!
timeout 60 bash -c "until grep -q ready $DIR/node.log; do sleep 0.2; done"
rss() { awk '/VmRSS/ {print $2}' "/proc/$NODE/status"; }
BASE=$(rss)

"$TROUPE" submit fan --key "fan-$N" --payload "{\"n\": $N}" --wait \
  > "$DIR/submit.log" 2>&1 &
SUBMIT=$!
PEAK=$BASE
WAITING_RSS=""
while kill -0 $SUBMIT 2>/dev/null; do
  r=$(rss); [ "$r" -gt "$PEAK" ] && PEAK=$r
  if [ -z "$WAITING_RSS" ] && [ "$("$PSQL" -Atq "$PG" -c "select state from jobs where job_id = 'fan-$N'")" = waiting ]; then
    WAITING_RSS=$r
    RECORD=$("$PSQL" -Atq "$PG" -c "select pg_column_size(children) from jobs where job_id = 'fan-$N'")
  fi
  sleep 0.2
done
wait $SUBMIT
cat "$DIR/submit.log"

q() { "$PSQL" -Atq "$PG" -c "$1"; }
echo "children:                 $N"
echo "fan-out (publish→spawn committed, ms): $(q "select round(extract(epoch from (select time from job_events where job_id = 'fan-$N' and type = 'job.spawned') - created_at) * 1000) from jobs where job_id = 'fan-$N'")"
echo "spawn committed→last child ended (ms): $(q "select round(extract(epoch from (select max(finished_at) from jobs where parent_id = 'fan-$N') - (select time from job_events where job_id = 'fan-$N' and type = 'job.spawned')) * 1000)")"
echo "join: last child ended→parent ended (ms): $(q "select round(extract(epoch from finished_at - (select max(finished_at) from jobs where parent_id = 'fan-$N')) * 1000) from jobs where job_id = 'fan-$N'")"
echo "parent's result:          $(q "select result::text from jobs where job_id = 'fan-$N'")"
echo "node RSS (KiB): idle $BASE, when the parent started waiting ${WAITING_RSS:-?}, peak $PEAK, after $(rss)"
echo "rows: jobs $(q "select count(*) from jobs where job_id = 'fan-$N' or parent_id = 'fan-$N'"), attempts $(q "select count(*) from job_attempts where job_id = 'fan-$N' or job_id like 'fan-$N/%'"), events $(q "select count(*) from job_events where job_id = 'fan-$N' or job_id like 'fan-$N/%'")"
echo "parent while waiting: one row whose children record is ${RECORD:-?} bytes; no actor, thread or delivery on any node"
