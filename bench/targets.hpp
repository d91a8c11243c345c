#pragma once

// Round two's targets (docs/benchmarks.md), judged from the figures of one
// run: each target beside the figure that meets or misses it and the
// same run's ceilings it is a ratio of. Written by the run itself so that
// no figure in the table comes from another run or by hand.

#include <string>
#include <vector>

#include "bench/bench_common.hpp"

namespace troupe::bench {

/// What the exec target is a ratio of: starting `/bin/true` with
/// posix_spawn and waiting for it, one at a time (µs per process).
figure spawn_ceiling(int runs, bool quick);

/// The targets table (markdown) over `figs`; a target whose figures the
/// run did not measure (`--only`) says so.
std::string targets_table(const std::vector<figure>& figs);

} // namespace troupe::bench
