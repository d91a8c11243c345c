// Fuzzes the JSON readers of messages/json_codec.hpp other than submissions:
// decode_event (the shell and clients read events from NATS) and
// normalize_json (stage outputs and admin bodies), and the hand-written
// writer behind encode_event (messages/json_text.hpp). Properties:
// normalize_json is idempotent; what encode_event writes for a decoded event
// decodes again to the same text, and is exactly nlohmann's dump() of itself
// (json_text.hpp promises byte-identical output); json_string turns any
// bytes, even invalid UTF-8, into one valid JSON string.

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_check.hpp"
#include "messages/json_codec.hpp"
#include "messages/json_text.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data,
                                      std::size_t size) {
  using troupe::fuzz::check;
  auto text = troupe::fuzz::as_text(data, size);

  if (auto once = troupe::normalize_json(text)) {
    auto twice = troupe::normalize_json(*once);
    check(twice && *twice == *once, "normalize_json is not idempotent");
  }

  if (auto ev = troupe::decode_event(text)) {
    auto wire = troupe::encode_event(*ev);
    auto back = troupe::decode_event(wire);
    check(static_cast<bool>(back), "encode_event wrote an undecodable event");
    check(troupe::encode_event(*back) == wire,
          "an event changes through decode_event and encode_event");
    auto tree = nlohmann::json::parse(wire, nullptr, false);
    check(!tree.is_discarded() && tree.dump() == wire,
          "encode_event differs from nlohmann's dump()");
  }

  auto quoted = troupe::json_string(text);
  auto str = nlohmann::json::parse(quoted, nullptr, false);
  check(!str.is_discarded() && str.is_string(),
        "json_string wrote invalid JSON");
  return 0;
}
