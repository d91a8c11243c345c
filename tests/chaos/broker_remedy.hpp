#pragma once

// What the run does, as an operator would, about a broker that came apart
// (docs/reliability.md, "Chaos"): nats-server 2.9.10 can stop answering
// for its stream after a replica reset, or keep messages no consumer hands
// out. The run restarts the servers one at a time, then asks a node to
// tidy what is still left; whatever is still wrong afterwards is judged.

#include <chrono>
#include <cstdint>
#include <string>

#include "runtime/nats/nats_client.hpp"

namespace troupe::chaos {

/// Whether the stream answers within `within`.
bool stream_answers(nats_client& nats, std::chrono::seconds within);

/// Waits until the stream holds none of the run's messages, at most
/// `bound`: acks follow commits asynchronously, and a consumer the broker
/// left stuck is mended by the sweeper in two min_age steps (move its
/// leader, then make it again: 2 x 20 s with the cluster's windows), which
/// may start only as the jobs settle.
void drain_stream(nats_client& nats, std::chrono::seconds bound);

/// Why the run restarts the nats-servers before judging, "" if it does
/// not: forced, the stream does not answer, or it still holds messages
/// after its replicas came apart (a reset replica was seen to answer
/// lookups on one subject with another's messages, so a consumer never
/// hands them out; a restart rebuilds its index). Messages left with the
/// replicas whole are troupe's to answer for and are judged as they are.
std::string broker_needs_restart(nats_client& nats, const std::string& dir,
                                 bool forced);

/// Messages still left in the stream when a server's log in `dir` shows
/// the replicas came apart; 0 otherwise. nats-server 2.9.10 was seen to
/// keep messages of ended jobs through a rolling restart: no consumer
/// handed them out and no ack removed them (seed 182, session 22). The
/// operator's next step is `tidy`, which deletes only messages whose job
/// PostgreSQL holds ended.
std::int64_t left_after_divergence(nats_client& nats, const std::string& dir);

} // namespace troupe::chaos
