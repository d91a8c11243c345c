// Fuzzes decode_heartbeat: every node decodes every peer's heartbeat, and
// anything that can publish on the cluster subject can send one. A heartbeat
// it accepts must come back unchanged through encode_heartbeat.

#include "fuzz/fuzz_check.hpp"
#include "messages/heartbeat.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data,
                                      std::size_t size) {
  using troupe::fuzz::check;
  auto hb = troupe::decode_heartbeat(troupe::fuzz::as_text(data, size));
  if (!hb)
    return 0;
  auto back = troupe::decode_heartbeat(troupe::encode_heartbeat(*hb));
  check(static_cast<bool>(back), "an accepted heartbeat does not re-decode");
  check(back->node_id == hb->node_id && back->host == hb->host &&
            back->pid == hb->pid && back->version == hb->version &&
            back->pipelines == hb->pipelines &&
            back->in_flight == hb->in_flight &&
            back->capacity == hb->capacity && back->state == hb->state &&
            back->health == hb->health &&
            back->started_at_ms == hb->started_at_ms &&
            back->sent_at_ms == hb->sent_at_ms && back->seq == hb->seq,
        "a heartbeat changes through encode_heartbeat");
  return 0;
}
