// Fuzzes decode_delivery, which turns every JetStream delivery (headers and
// body, all a publisher's) into a job spec. The input is split into the
// message id, the replay header and the body at the first two NUL bytes;
// the input's size picks which time and generation headers it also sets
// (from the message id's text).
// Beyond not crashing: whatever is sent, the spec can be stored (no NUL in
// its payload, an id within the key limit or one of the node's own), and
// undecodable input never takes the replay header's id.

#include <string>

#include "fuzz/fuzz_check.hpp"
#include "messages/delivery.hpp"
#include "messages/json_guard.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data,
                                      std::size_t size) {
  using troupe::fuzz::check;
  auto text = troupe::fuzz::as_text(data, size);
  troupe::delivery_fields d;
  auto a = text.find('\0');
  auto b = a == std::string_view::npos ? a : text.find('\0', a + 1);
  d.msg_id = std::string{text.substr(0, a)};
  if (a != std::string_view::npos)
    d.replay_of = std::string{text.substr(a + 1, b - a - 1)};
  if (b != std::string_view::npos)
    d.body = std::string{text.substr(b + 1)};
  d.stream_seq = size;
  d.published_ms = 1'700'000'000'000;
  d.num_delivered = 1 + size % 3;
  if (size % 5 == 1)
    d.gen = d.msg_id.substr(0, 12);
  if (size % 7 == 2)
    d.delay = d.msg_id.substr(0, 16);
  if (size % 11 == 3)
    d.run_at = d.msg_id.substr(0, 16);
  troupe::input_limits limits;
  std::int64_t left = 0;
  auto spec = troupe::decode_delivery(d, "p", limits, d.published_ms, &left);
  check(!spec.job_id.empty(), "a delivery without a job id");
  check(!troupe::json_has_nul(spec.payload), "a payload PostgreSQL refuses");
  check(spec.job_id.size() <= limits.max_key_length ||
            spec.job_id.rfind("invalid-", 0) == 0 ||
            spec.job_id.rfind("js-", 0) == 0,
        "an id over the key limit");
  if (!spec.invalid_reason.empty()) {
    check(spec.replay_life == 0, "undecodable input claims as a replay");
    check(!spec.fresh, "undecodable input speculates");
  }
  if (spec.gen > 0)
    check(spec.job_id == d.replay_of && !spec.fresh && spec.run_at_ms == 0,
          "a generation without its job, or due later");
  if (spec.replay_life > 0)
    check(spec.job_id == d.replay_of && spec.replay_life >= 2,
          "a replay of another job or of life 1");
  return 0;
}
