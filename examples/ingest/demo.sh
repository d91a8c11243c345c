#!/usr/bin/env bash
# Runs the ingestion example on a local cluster: starts `troupe dev` (a
# nats-server with JetStream, PostgreSQL 15 and one node running the
# `ingest` pipeline) under .troupe/ingest, ingests a sample folder (this
# repository's docs, plus generated text, Markdown, HTML and PDF
# documents, a copy of one of them and a corrupt PDF), prints the summary,
# searches it, and stops everything. Needs a built tree (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=.troupe/ingest
nats_port=${NATS_PORT:-4222}
pg_port=${PG_PORT:-55432}
rm -rf "$dir"
mkdir -p "$dir/corpus"
/usr/bin/python3 examples/ingest/corpus.py "$dir/corpus" > /dev/null
cp README.md docs/*.md "$dir/corpus/"
export INGEST_ROOT="$PWD/$dir/corpus"
export INGEST_PG_URL="postgresql://postgres@127.0.0.1:$pg_port/troupe"
export TROUPE_NATS_URL="nats://127.0.0.1:$nats_port"

build/troupe dev --dir "$dir" --config examples/ingest/ingest.toml \
  --nats-port "$nats_port" --pg-port "$pg_port" > "$dir/dev.log" 2>&1 &
dev=$!
stop() { kill -INT "$dev" 2>/dev/null && wait "$dev" || true; }
trap stop EXIT
for _ in $(seq 600); do
  grep -q "ready;" "$dir/dev.log" && break
  if ! kill -0 "$dev" 2>/dev/null; then
    echo "troupe dev did not start:" >&2
    tail -20 "$dir/dev.log" >&2
    exit 1
  fi
  sleep 0.1
done
echo "local cluster up (log: $dir/dev.log); ingesting $(ls "$dir/corpus" | grep -vc expected.json) files from $dir/corpus"
/usr/bin/python3 examples/ingest/run.py "$dir/corpus" \
  --query '"quick troupe of zebras"'
echo
echo "search it yourself while a cluster runs: examples/ingest/query.py --pg $INGEST_PG_URL 'dead letter'"
