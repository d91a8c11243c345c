#!/bin/sh
# A stage written with examples/stages/troupe_stage.sh: retries its first
# attempt, fails poison permanently, else adds one to the previous stage's n.
. "$(dirname "$0")/../../../examples/stages/troupe_stage.sh"
stage_read
if [ "$(stage_get .payload.poison)" = "true" ]; then
  stage_fail "poison: this payload is refused"
fi
if [ "$(stage_get .attempt)" = "1" ]; then
  stage_progress 0.3 "first try"
  stage_retry "busy, try again"
fi
n=$(stage_get .previous.py.n)
stage_output "{\"n\": $((n + 1))}"
