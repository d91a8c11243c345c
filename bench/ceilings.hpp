#pragma once

// The ceilings troupe's figures are ratios of, measured in the same run:
// raw JetStream with nats.c (async publish with acks, pull + explicit ack,
// both) and raw PostgreSQL (batched upserts of job-shaped rows, single-row
// commits).

#include <string>
#include <vector>

#include "bench/bench_common.hpp"
#include "runtime/nats/nats_client.hpp"

namespace troupe::bench {

struct ceiling_inputs {
  int runs = 3;
  bool quick = false;
  nats_client& client;
  /// JetStream context for asynchronous publishing on `client`.
  jsCtx* async_js = nullptr;
  std::string pg_url;
  /// For a second connection (the floors' responder).
  std::string nats_url;
};

/// A file-stored work-queue stream `name` on `subject` (like troupe's, one
/// replica); fails the benchmark if it cannot be made.
void add_work_queue_stream(nats_client& client, const std::string& name,
                           const std::string& subject);

/// Five figures, in order: JetStream publish, pull + ack, publish→consume→
/// ack, PostgreSQL batched upsert, PostgreSQL single-row commits.
std::vector<figure> measure_ceilings(const ceiling_inputs& in);

} // namespace troupe::bench
