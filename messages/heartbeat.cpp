#include "messages/heartbeat.hpp"
#include "messages/json_guard.hpp"

#include <nlohmann/json.hpp>

#include "messages/errc.hpp"

namespace troupe {

std::string encode_heartbeat(const heartbeat& hb) {
  return nlohmann::json{{"node_id", hb.node_id},
                        {"host", hb.host},
                        {"pid", hb.pid},
                        {"version", hb.version},
                        {"pipelines", hb.pipelines},
                        {"in_flight", hb.in_flight},
                        {"capacity", hb.capacity},
                        {"state", hb.state},
                        {"health", hb.health},
                        {"started_at_ms", hb.started_at_ms},
                        {"sent_at_ms", hb.sent_at_ms},
                        {"seq", hb.seq}}
      .dump();
}

caf::expected<heartbeat> decode_heartbeat(std::string_view text) {
  auto j = parse_json_or_discarded(text);
  if (j.is_discarded() || !j.is_object())
    return make_error(errc::invalid_payload, "heartbeat is not a JSON object");
  // nlohmann converts a float to an integer field with a plain cast, which
  // is undefined behaviour out of range ({"seq": 1e300}): integer fields
  // take integers only.
  for (auto key :
       {"pid", "in_flight", "capacity", "started_at_ms", "sent_at_ms", "seq"})
    if (auto i = j.find(key); i != j.end() && i->is_number_float())
      return make_error(errc::invalid_payload,
                        std::string{"heartbeat field '"} + key +
                            "' must be an integer");
  heartbeat hb;
  try {
    hb.node_id = j.at("node_id").get<std::string>();
    hb.host = j.value("host", "");
    hb.pid = j.value("pid", std::int64_t{0});
    hb.version = j.value("version", "");
    hb.pipelines = j.value("pipelines", std::vector<std::string>{});
    hb.in_flight = j.value("in_flight", std::int64_t{0});
    hb.capacity = j.value("capacity", std::int64_t{0});
    hb.state = j.value("state", "up");
    hb.health = j.value("health", "healthy");
    hb.started_at_ms = j.value("started_at_ms", std::int64_t{0});
    hb.sent_at_ms = j.value("sent_at_ms", std::int64_t{0});
    hb.seq = j.value("seq", std::int64_t{0});
  } catch (const nlohmann::json::exception& e) {
    return make_error(errc::invalid_payload,
                      std::string{"malformed heartbeat: "} + e.what());
  }
  if (hb.node_id.empty())
    return make_error(errc::invalid_payload, "heartbeat without node_id");
  return hb;
}

} // namespace troupe
