#pragma once

// What a JetStream delivery of a job says, and the job spec it becomes.
// Everything here comes from a publisher and is checked: headers, body,
// ids. A pure function, tested and fuzzed without a server;
// runtime/nats/delivery.hpp reads the fields out of a nats.c message.

#include <cstdint>
#include <string>

#include "messages/job.hpp"
#include "messages/json_codec.hpp"

namespace troupe {

/// The parts of a delivered message that decide its job.
struct delivery_fields {
  std::string body;
  /// `Nats-Msg-Id` header (the idempotency key), may be empty.
  std::string msg_id;
  /// `Troupe-Job-Id` header (replays and the scheduler's publications),
  /// may be empty.
  std::string replay_of;
  /// `Troupe-Gen` header: the scheduler's publication number, with
  /// `Troupe-Wake` saying why ("scheduled", "retry", "rescue").
  std::string gen;
  std::string wake;
  /// `Troupe-Run-At` (ms since the epoch) and `Troupe-Delay` (ms after
  /// publication): when a directly published job may start.
  std::string run_at;
  std::string delay;
  /// `Troupe-Rate: admitted`: the submit API took the job's token from its
  /// tenant's rate already (the intake does not take another).
  bool rate_admitted = false;
  /// `traceparent` and `tracestate` headers (W3C; the body's fields win).
  std::string traceparent;
  std::string tracestate;
  /// From the JetStream metadata (zero when it is missing).
  std::uint64_t stream_seq = 0;
  std::int64_t published_ms = 0;
  std::uint64_t num_delivered = 0;
};

/// The job spec for `d` on `pipeline`. Undecodable input (a malformed or
/// oversized body, NUL, over-long or malformed ids) becomes a spec with
/// invalid_reason set: it is dead-lettered under its key, or under an id of
/// its own (`invalid-<seq>-<ms>`) when the key is malformed or names a job
/// that exists — never touching that job. A job due later (`delay_ms` or
/// `run_at_ms` in the body, `Troupe-Delay` or `Troupe-Run-At` headers: the
/// latest wins) gets job_spec::run_at_ms, and `*delay_left` (ms) when
/// given.
job_spec decode_delivery(const delivery_fields& d, const std::string& pipeline,
                         const input_limits& limits, std::int64_t now_ms,
                         std::int64_t* delay_left);

} // namespace troupe
