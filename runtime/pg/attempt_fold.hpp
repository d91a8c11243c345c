#pragma once

// A stage's successful attempt is stored once, in its checkpoint, when the
// checkpoint can state it exactly (schema migration 15; docs/schema.md).
// The view job_attempts reads such attempts back from the checkpoints, so
// the attempt history is the same whether an attempt was folded or not.

#include "messages/job.hpp"

namespace troupe {

/// The successful attempt `cp` holds: the write's ok attempt of the same
/// stage and attempt number, with the checkpoint's stage name and duration
/// and no error. nullptr if the write has none (the attempt is then stored
/// on its own, as before).
const attempt_record* folded_attempt(const job_write& w, const checkpoint& cp);

/// Whether one of the write's checkpoints holds `a`, so that it is not
/// stored in stage_attempts.
bool is_folded(const job_write& w, const attempt_record& a);

} // namespace troupe
