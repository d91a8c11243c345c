#pragma once

// Where one job's time goes on its way through a node: opt-in stamps at
// the serial path's hand-offs (the submit API's request, its presence
// read and publish, the intake's fetch and presence read, the store's
// commit, the terminal event), for the latency benchmark
// (bench/timeline.hpp, docs/benchmarks.md). Off unless the environment
// variable TROUPE_LATENCY_PROBE names a file: then every stamp is kept in
// memory (at most `max_stamps`) and written, one "job point µs" line each
// (wall clock, so that another process's stamps line up), to
// `<file>.<pid>` when the node stops. Off, a stamp is one test of a flag.
//
// A diagnosis, not monitoring: every stamp is kept until the node stops
// (docs/operations.md says when it helps); metrics and spans are the
// operator's everyday tools.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace troupe::latency_probe {

inline constexpr std::size_t max_stamps = 2'000'000;

/// Whether TROUPE_LATENCY_PROBE was set when the process first asked.
bool enabled();

/// Microseconds since the epoch (the system clock).
std::int64_t now_us();

/// Records that `job_id` reached `point` (a string literal) now / at `us`.
void mark(std::string_view job_id, const char* point);
void mark_at(std::string_view job_id, const char* point, std::int64_t us);

/// Writes the stamps kept so far to `<file>.<pid>` and forgets them.
void write_out();

} // namespace troupe::latency_probe
