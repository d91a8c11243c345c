#pragma once

// The latency floors of troupe's durable path, measured in the same run: the
// round trips a submitted job cannot avoid, each taken one at a time (p50,
// ms). docs/benchmarks.md adds them up against the latency target.

#include <vector>

#include "bench/ceilings.hpp"

namespace troupe::bench {

/// Four figures, in order: a core NATS request→reply, a JetStream
/// publish→ack, a PostgreSQL read by primary key, and a PostgreSQL
/// one-row commit (begin, upsert, commit: a transaction like the store's).
std::vector<figure> measure_floors(const ceiling_inputs& in);

/// The serial path's floor from those figures (ms), or a negative value if
/// one is missing: the request in and the event out (one round trip), the
/// JetStream publish, the API's and the node's reads of the job's row, and
/// the commit of its terminal state.
double latency_floor_ms(const std::vector<figure>& figs);

} // namespace troupe::bench
