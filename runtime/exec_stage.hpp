#pragma once

// The `exec` stage kind: any program is a stage. The stage input (JSON) is
// written to its stdin; its stdout (one JSON document, or nothing) is the
// output. Exit 0 = success; an exit code listed in `retryable_exit_codes`
// (default [75], EX_TEMPFAIL) = retryable failure; any other exit code =
// permanent failure; death by a signal = retryable failure. stderr goes into
// the attempt's error. The process runs in its own process group, which is
// killed when the attempt is abandoned (timeout, cancel, node shutdown).
// The wait runs on a blocking_pool thread, never on a scheduler thread.

#include <memory>

#include "actors/stage_kind.hpp"

namespace troupe {

class blocking_pool;

/// Factory for `exec` stages running on `pool`.
stage_kind_factory make_exec_stage_factory(std::shared_ptr<blocking_pool> pool);

} // namespace troupe
