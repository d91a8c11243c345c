#!/bin/sh
# An `exec` stage in plain sh: reads the stage input (JSON) on stdin and
# "fetches" the document named in the payload's "path" field, writing
# {"path": ..., "bytes": N, "text": ...} on stdout.
# Exit 75 (EX_TEMPFAIL) asks troupe to retry; exit 1 is a permanent failure.
set -eu
input=$(cat)
path=$(printf '%s' "$input" | sed -n 's/.*"path":"\([^"]*\)".*/\1/p')
if [ -z "$path" ]; then
  echo "payload has no \"path\"" >&2
  exit 1
fi
if [ ! -r "$path" ]; then
  echo "cannot read $path yet" >&2
  exit 75
fi
# Keep the example dependency-free: JSON-escape with sed (quotes, backslashes,
# newlines).
text=$(head -c 4096 "$path" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | tr '\n\t' '  ')
bytes=$(wc -c < "$path")
printf '{"path":"%s","bytes":%s,"text":"%s"}\n' "$path" "$bytes" "$text"
