#pragma once

// One attempt of one stage. Spawned and monitored by its job actor.
//
// Accepts:  stage_outcome              (from its stage kind; forwarded, then
//                                       the actor quits)
//           started_atom               (from a kind that queues attempts:
//                                       its work began; forwarded)
//           (progress_atom, string)    (a report: progress or heartbeat,
//                                       one JSON object; forwarded)
// Sends:    (std::int64_t attempt_seq, stage_outcome) to the job actor,
//           exactly once, unless it is killed first (timeout, cancel);
//           (started_atom, std::int64_t attempt_seq) to the job actor,
//           before the outcome, if the kind queues attempts;
//           (progress_atom, std::int64_t attempt_seq, std::string report)
//           to the job actor, for each report, before the outcome.
// A stage kind that throws (in start or later) becomes a failed outcome with
// code "exception": exceptions never cross the actor boundary.

#include <cstdint>
#include <memory>

#include <caf/actor.hpp>
#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>

#include "actors/stage_kind.hpp"

namespace troupe {

/// Behavior of a stage actor running `req` with `kind`, reporting to `job`.
caf::behavior stage_actor(caf::event_based_actor* self, caf::actor job,
                          std::int64_t attempt_seq,
                          std::shared_ptr<const stage_kind> kind,
                          stage_request req);

} // namespace troupe
