#include "runtime/nats/delivery.hpp"

#include <chrono>
#include <string>

namespace troupe {

namespace {

std::string header(natsMsg* m, const char* key) {
  const char* v = nullptr;
  if (natsMsgHeader_Get(m, key, &v) == NATS_OK && v)
    return v;
  return {};
}

} // namespace

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

delivery_fields read_delivery(natsMsg* m) {
  delivery_fields d;
  d.body.assign(natsMsg_GetData(m),
                static_cast<std::size_t>(natsMsg_GetDataLength(m)));
  d.msg_id = header(m, "Nats-Msg-Id");
  d.replay_of = header(m, "Troupe-Job-Id");
  d.gen = header(m, "Troupe-Gen");
  d.wake = header(m, "Troupe-Wake");
  d.run_at = header(m, "Troupe-Run-At");
  d.delay = header(m, "Troupe-Delay");
  d.rate_admitted = header(m, "Troupe-Rate") == "admitted";
  d.traceparent = header(m, "traceparent");
  d.tracestate = header(m, "tracestate");
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
    d.stream_seq = meta->Sequence.Stream;
    d.published_ms = meta->Timestamp / 1000000;
    d.num_delivered = meta->NumDelivered;
    jsMsgMetaData_Destroy(meta);
  }
  return d;
}

} // namespace troupe
