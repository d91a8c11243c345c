# Helpers for writing a troupe `exec` stage in sh (docs/stages.md). Source
# this file, then:
#
#   stage_read                       # the stage input, into $STAGE_INPUT
#   name=$(stage_get .payload.name)  # a field of it (jq syntax)
#   stage_progress 0.5 "half way"    # a progress report on descriptor 3
#   stage_retry "upstream busy"      # exit 75: retried with backoff
#   stage_fail "bad input"           # exit 1: dead-lettered at once
#   stage_output '{"ok":true}'       # the stage's output, then exit 0
#
# Needs jq (Debian package jq) for stage_get and stage_output's check.

stage_read() {
  STAGE_INPUT=$(cat)
}

stage_get() {
  printf '%s' "$STAGE_INPUT" | jq -c -e "$1" 2>/dev/null | sed 's/^"\(.*\)"$/\1/'
}

stage_progress() {
  # $1: fraction 0..1, $2: message (optional). Descriptor 3 may be closed
  # when the script runs by hand: the report is then dropped.
  msg=$(printf '%s' "${2:-}" | jq -R -s -c .)
  { printf '{"progress":%s,"message":%s}\n' "$1" "$msg" >&3; } 2>/dev/null || true
}

stage_retry() {
  printf '%s\n' "${1:-retry}" >&2
  exit 75
}

stage_fail() {
  printf '%s\n' "${1:-failed}" >&2
  exit 1
}

stage_output() {
  if ! printf '%s' "$1" | jq -e . >/dev/null 2>&1; then
    stage_fail "the stage's output is not JSON"
  fi
  printf '%s\n' "$1"
  exit 0
}
