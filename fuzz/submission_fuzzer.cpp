// Fuzzes decode_submission, which reads every job body a node receives from
// the request/reply API and the JetStream subject. Beyond not crashing: a
// body it accepts must come back unchanged through encode_submission, since
// the CLI and replays re-encode submissions.

#include "fuzz/fuzz_check.hpp"
#include "messages/json_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data,
                                      std::size_t size) {
  using troupe::fuzz::check;
  auto s = troupe::decode_submission(troupe::fuzz::as_text(data, size));
  if (!s)
    return 0;
  auto back = troupe::decode_submission(troupe::encode_submission(*s));
  check(static_cast<bool>(back), "an accepted submission does not re-decode");
  check(back->pipeline == s->pipeline && back->key == s->key &&
            back->tenant == s->tenant &&
            back->correlation_id == s->correlation_id &&
            back->payload == s->payload && back->priority == s->priority &&
            back->delay_ms == s->delay_ms,
        "a submission changes through encode_submission");
  return 0;
}
