#!/bin/sh
# An `exec` stage that uses the output of an earlier stage: counts the words
# of the text that `fetch` returned (found under "previous" in the input).
# With --strict, an empty text is a permanent failure.
set -eu
input=$(cat)
text=$(printf '%s' "$input" | sed -n 's/.*"previous":{"fetch":{.*"text":"\([^"]*\)".*/\1/p')
words=$(printf '%s' "$text" | wc -w)
if [ "${1:-}" = "--strict" ] && [ "$words" -eq 0 ]; then
  echo "no text to parse" >&2
  exit 1
fi
printf '{"words":%s}\n' "$words"
