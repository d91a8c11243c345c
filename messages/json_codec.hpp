#pragma once

// JSON wire format of troupe (documented in docs/wire-format.md). Decoders
// never throw: malformed input becomes errc::invalid_payload (or
// errc::payload_too_large) with a message that says what and where.

#include <cstdint>
#include <string>
#include <string_view>

#include <caf/expected.hpp>
#include <nlohmann/json_fwd.hpp>

#include "messages/errc.hpp"
#include "messages/job.hpp"

namespace troupe {

/// Limits applied to incoming submissions.
struct input_limits {
  std::int64_t max_payload_bytes = 1 << 20;
  int max_depth = 64;
  std::size_t max_key_length = 256;
};

/// A decoded submission body (JetStream subject or request/reply API).
struct submission {
  /// Pipeline (API only; for `<prefix>.jobs.<pipeline>` it comes from the
  /// subject).
  std::string pipeline;
  /// Idempotency key (API only; the stream uses the Nats-Msg-Id header).
  std::string key;
  std::string tenant;
  std::string correlation_id;
  std::string payload = "null";
  std::int32_t priority = 0;
  /// Start no sooner than this long after publication.
  std::int64_t delay_ms = 0;
  /// Start no sooner than this time (ms since the epoch; 0: now).
  std::int64_t run_at_ms = 0;
  /// W3C trace context of the submitting service (messages/trace_context).
  std::string traceparent;
  std::string tracestate;
};

/// Decodes `{"payload": ..., "tenant"?, "correlation_id"?, "priority"?,
/// "delay_ms"?, "run_at_ms"?, "pipeline"?, "key"?, "traceparent"?,
/// "tracestate"?}`.
caf::expected<submission> decode_submission(std::string_view body,
                                            const input_limits& limits = {});

/// Encodes a submission body (the inverse of decode_submission).
std::string encode_submission(const submission& s);

/// `{"ok":true,"job_id":...}`
std::string encode_submit_ok(std::string_view job_id);

/// `{"ok":true,"job_id":...,"duplicate":true}`: the key names a job that
/// exists; nothing new was submitted.
std::string encode_submit_duplicate(std::string_view job_id);

/// `{"ok":false,"error":{"code":...,"message":...}}`
std::string encode_submit_error(std::string_view code,
                                std::string_view message);

/// Encodes an event as the JSON published on the events subject.
std::string encode_event(const job_event& ev);

/// Encodes an event for the event log: as encode_event, without the
/// result (the job's row holds it).
std::string encode_logged_event(const job_event& ev);

/// Decodes an event; used by the shell and by tests acting as clients.
caf::expected<job_event> decode_event(std::string_view text);

/// JSON object for an attempt record (shell, dead letters, history).
nlohmann::json to_json(const attempt_record& a);

/// Decodes an attempt record written by to_json.
caf::expected<attempt_record> attempt_from_json(const nlohmann::json& j);

/// JSON object for a checkpoint.
nlohmann::json to_json(const checkpoint& c);

/// Checks that `text` is one valid JSON document; returns its compact form.
caf::expected<std::string> normalize_json(std::string_view text,
                                          int max_depth = 64);

} // namespace troupe
