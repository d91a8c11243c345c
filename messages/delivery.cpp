#include "messages/delivery.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "messages/errc.hpp"
#include "messages/json_text.hpp"
#include "messages/trace_context.hpp"

namespace troupe {

namespace {

/// Valid UTF-8 without NUL, at most `n` bytes of input: storable as text.
std::string storable(std::string_view s, std::size_t n) {
  auto out = valid_text(s.substr(0, n));
  std::replace(out.begin(), out.end(), '\0', ' ');
  return out;
}

/// Marks `spec` as undecodable. It keeps the id its headers name if that id
/// is well-formed (the job actor creates it dead-lettered, or records it
/// under `invalid-<seq>-<ms>` if the id exists: junk never touches a job),
/// else it gets that id of its own. What was sent is kept for the dead
/// letter.
void reject(job_spec& spec, const caf::error& why, const delivery_fields& d,
            bool id_ok) {
  spec.invalid_reason = describe(why);
  spec.invalid_code = to_string(code_of(why));
  spec.fresh = false;
  spec.replay_life = 0;
  auto named = d.replay_of.empty() ? d.msg_id : d.replay_of;
  spec.payload = nlohmann::json{{"raw", storable(d.body, 64 * 1024)},
                                {"key", storable(named, 512)}}
                     .dump();
  if (!id_ok || spec.job_id.empty())
    spec.job_id = "invalid-" + std::to_string(d.stream_seq) + "-" +
                  std::to_string(d.published_ms);
}

caf::error too_long(const std::string& s, const char* what,
                    const input_limits& limits) {
  if (s.size() <= limits.max_key_length)
    return caf::none;
  return make_error(errc::key_too_long,
                    std::string{what} + " is longer than " +
                        std::to_string(limits.max_key_length) + " bytes");
}

/// The life named by a replay's message id `<job_id>#<life>` (>= 2), or 0.
std::int32_t replay_life(const std::string& msg_id, const std::string& id) {
  if (msg_id.size() <= id.size() + 1 ||
      msg_id.compare(0, id.size() + 1, id + "#") != 0)
    return 0;
  auto life = msg_id.substr(id.size() + 1);
  if (life.size() > 9 ||
      life.find_first_not_of("0123456789") != std::string::npos)
    return 0;
  auto n = std::stoi(life);
  return n >= 2 ? n : 0;
}

/// Sets the job id (and a replay's life) from the headers, or says why
/// they are malformed.
/// A header holding a count or a time: digits only, at most 15 of them.
bool read_number(const std::string& text, std::int64_t& out) {
  if (text.empty() || text.size() > 15 ||
      text.find_first_not_of("0123456789") != std::string::npos)
    return false;
  out = std::stoll(text);
  return true;
}

/// The scheduler's publication of a job it kept (Troupe-Gen): the job is
/// named by Troupe-Job-Id.
caf::error read_generation(const delivery_fields& d, job_spec& spec) {
  std::int64_t gen = 0;
  if (!read_number(d.gen, gen) || gen < 1 || gen > 1000000000)
    return make_error(errc::invalid_payload,
                      "Troupe-Gen must be a whole number from 1");
  if (d.replay_of.empty())
    return make_error(errc::invalid_payload,
                      "Troupe-Gen needs a Troupe-Job-Id header");
  spec.job_id = d.replay_of;
  spec.gen = static_cast<std::int32_t>(gen);
  // Its first run announces job.started; a retry or rescue resumes.
  spec.resumed = d.wake != "scheduled";
  return caf::none;
}

caf::error read_job_id(const delivery_fields& d, const input_limits& limits,
                       job_spec& spec) {
  if (auto err = too_long(d.msg_id, "Nats-Msg-Id", limits))
    return err;
  if (auto err = too_long(d.replay_of, "Troupe-Job-Id", limits))
    return err;
  if (!d.gen.empty())
    return read_generation(d, spec);
  if (d.replay_of.empty()) {
    // `#` separates a job id from its life in replays' message ids: a key
    // with it could collide with (and silently swallow) a real replay.
    if (d.msg_id.find('#') != std::string::npos)
      return make_error(errc::invalid_payload,
                        "Nats-Msg-Id must not contain '#'");
    spec.job_id = d.msg_id;
    return caf::none;
  }
  spec.replay_life = replay_life(d.msg_id, d.replay_of);
  if (spec.replay_life == 0)
    return make_error(errc::invalid_payload,
                      "a Troupe-Job-Id header needs the message id "
                      "'<job id>#<life>' of a replay");
  spec.job_id = d.replay_of;
  return caf::none;
}

/// When the job may start: the latest of the body's and the headers' times.
/// A scheduler's publication is due now whatever its body says.
caf::error read_time(const delivery_fields& d, const submission& sub,
                     job_spec& spec) {
  if (spec.gen > 0)
    return caf::none;
  std::int64_t at = sub.run_at_ms;
  std::int64_t delay = sub.delay_ms;
  std::int64_t header_at = 0;
  std::int64_t header_delay = 0;
  if (!d.run_at.empty() && !read_number(d.run_at, header_at))
    return make_error(errc::invalid_payload,
                      "Troupe-Run-At must be milliseconds since the epoch");
  if (!d.delay.empty() && !read_number(d.delay, header_delay))
    return make_error(errc::invalid_payload,
                      "Troupe-Delay must be a whole number of milliseconds");
  at = std::max(at, header_at);
  delay = std::max(delay, header_delay);
  if (delay > 0 && d.published_ms > 0)
    at = std::max(at, d.published_ms + delay);
  spec.run_at_ms = at;
  return caf::none;
}

/// The body's trace context, else valid headers: tracing libraries set the
/// headers, so an invalid one is ignored (as W3C asks), not refused.
void read_trace_context(const delivery_fields& d, submission& sub,
                        job_spec& spec) {
  if (!sub.traceparent.empty()) {
    spec.traceparent = std::move(sub.traceparent);
    spec.tracestate = std::move(sub.tracestate);
  } else if (valid_traceparent(d.traceparent)) {
    spec.traceparent = d.traceparent;
    if (valid_tracestate(d.tracestate))
      spec.tracestate = d.tracestate;
  }
}

} // namespace

job_spec decode_delivery(const delivery_fields& d, const std::string& pipeline,
                         const input_limits& limits, std::int64_t now,
                         std::int64_t* delay_left) {
  job_spec spec;
  spec.pipeline = pipeline;
  spec.stream_seq = d.stream_seq;
  spec.submitted_at_ms = d.published_ms;
  auto id_error = read_job_id(d, limits, spec);
  if (spec.job_id.empty() && !id_error)
    // No key: the message is the job. Sequence and time together, since a
    // recreated stream starts its sequences again.
    spec.job_id = "js-" + std::to_string(d.stream_seq) + "-" +
                  std::to_string(d.published_ms);
  // Only a first delivery of a job published as new may run before its
  // claim; a replay names its job in Troupe-Job-Id.
  spec.fresh = d.num_delivered == 1 && spec.replay_life == 0 && spec.gen == 0;
  bool id_ok = !id_error;
  auto sub = id_error ? caf::expected<submission>{std::move(id_error)}
                      : decode_submission(d.body, limits);
  if (!sub) {
    reject(spec, sub.error(), d, id_ok && spec.replay_life == 0);
    return spec;
  }
  spec.payload = std::move(sub->payload);
  spec.tenant = std::move(sub->tenant);
  spec.correlation_id = std::move(sub->correlation_id);
  spec.priority = sub->priority;
  read_trace_context(d, *sub, spec);
  if (auto err = read_time(d, *sub, spec)) {
    reject(spec, err, d, id_ok && spec.replay_life == 0);
    return spec;
  }
  if (delay_left && spec.run_at_ms > now)
    *delay_left = spec.run_at_ms - now;
  return spec;
}

} // namespace troupe
