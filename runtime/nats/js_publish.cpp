// Publishing to JetStream with headers: one message waiting for its ack
// (js_publish_headers), or a batch in flight together (js_publish_batch):
// one round trip for the batch instead of one per message, each message's
// ack still checked.
#include "runtime/nats/nats_client.hpp"

#include <memory>
#include <mutex>
#include <unordered_map>

namespace troupe {

namespace {

/// The acks of one batch, filled in by the ack handler (a nats.c thread).
struct batch_state {
  std::mutex mtx;
  std::vector<std::uint64_t> seq; ///< 0 until its ack came
};

/// Where the ack handler finds a message's batch, by message id. It lives
/// as long as the process: nats.c may run a handler after the context that
/// called it is gone (a late ack after a timeout), and then it finds
/// nothing here and only frees the message.
struct ack_registry {
  std::mutex mtx;
  std::unordered_map<std::string,
                     std::pair<std::shared_ptr<batch_state>, std::size_t>>
      pending;
};

ack_registry& registry() {
  static auto* r = new ack_registry; // never destroyed, see above
  return *r;
}

void on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr*, void*) {
  const char* id = nullptr;
  if (pa && pa->Sequence > 0 &&
      natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id) {
    std::shared_ptr<batch_state> batch;
    std::size_t index = 0;
    {
      auto& r = registry();
      std::lock_guard<std::mutex> guard{r.mtx};
      if (auto i = r.pending.find(id); i != r.pending.end())
        std::tie(batch, index) = i->second;
    }
    if (batch) {
      std::lock_guard<std::mutex> guard{batch->mtx};
      batch->seq[index] = pa->Sequence;
    }
  }
  natsMsg_Destroy(msg);
}

natsMsg* make_msg(const js_outgoing& m) {
  natsMsg* msg = nullptr;
  auto s = natsMsg_Create(&msg, m.subject.c_str(), nullptr, m.data.data(),
                          static_cast<int>(m.data.size()));
  for (std::size_t i = 0; s == NATS_OK && i < m.headers.size(); ++i)
    s = natsMsgHeader_Set(msg, m.headers[i].first.c_str(),
                          m.headers[i].second.c_str());
  if (s == NATS_OK)
    s = natsMsgHeader_Set(msg, "Nats-Msg-Id", m.msg_id.c_str());
  if (s != NATS_OK) {
    natsMsg_Destroy(msg);
    return nullptr;
  }
  return msg;
}

/// Registers the batch's message ids; unregisters them when it goes.
struct registration {
  const std::vector<js_outgoing>& msgs;
  std::shared_ptr<batch_state> batch;

  registration(const std::vector<js_outgoing>& m,
               std::shared_ptr<batch_state> b)
      : msgs(m), batch(std::move(b)) {
    auto& r = registry();
    std::lock_guard<std::mutex> guard{r.mtx};
    for (std::size_t i = 0; i < msgs.size(); ++i)
      r.pending[msgs[i].msg_id] = {batch, i};
  }

  ~registration() {
    auto& r = registry();
    std::lock_guard<std::mutex> guard{r.mtx};
    for (const auto& m : msgs)
      if (auto i = r.pending.find(m.msg_id);
          i != r.pending.end() && i->second.first == batch)
        r.pending.erase(i);
  }
};

} // namespace

caf::expected<std::uint64_t>
nats_client::js_publish_job(const std::string& subject, const std::string& data,
                            const std::string& msg_id,
                            const std::string& job_id,
                            std::int64_t timeout_ms) {
  return js_publish_headers(subject, data, msg_id, {{"Troupe-Job-Id", job_id}},
                            timeout_ms);
}

caf::expected<std::uint64_t> nats_client::js_publish_headers(
    const std::string& subject, const std::string& data,
    const std::string& msg_id,
    const std::vector<std::pair<std::string, std::string>>& headers,
    std::int64_t timeout_ms, bool* duplicate) {
  natsMsg* msg = nullptr;
  auto s = natsMsg_Create(&msg, subject.c_str(), nullptr, data.data(),
                          static_cast<int>(data.size()));
  for (std::size_t i = 0; s == NATS_OK && i < headers.size(); ++i)
    s = natsMsgHeader_Set(msg, headers[i].first.c_str(),
                          headers[i].second.c_str());
  if (s != NATS_OK) {
    natsMsg_Destroy(msg);
    return nats_error(s, "building a message for " + subject);
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = timeout_ms;
  po.MsgId = msg_id.c_str();
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  s = js_PublishMsg(&ack, js_, msg, &po, &jerr);
  natsMsg_Destroy(msg);
  if (s != NATS_OK) {
    if (ack)
      jsPubAck_Destroy(ack);
    return nats_error(s, "JetStream publish to " + subject);
  }
  auto seq = ack->Sequence;
  if (duplicate)
    *duplicate = ack->Duplicate;
  jsPubAck_Destroy(ack);
  return seq;
}

std::vector<std::uint64_t>
nats_client::js_publish_batch(const std::vector<js_outgoing>& msgs,
                              std::int64_t timeout_ms) {
  std::lock_guard<std::mutex> one_batch{batch_mtx_};
  auto batch = std::make_shared<batch_state>();
  batch->seq.assign(msgs.size(), 0);
  if (!batch_js_) {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.AckHandler = on_ack;
    if (natsConnection_JetStream(&batch_js_, conn_, &jo) != NATS_OK)
      return batch->seq;
  }
  {
    registration reg{msgs, batch};
    for (const auto& m : msgs) {
      natsMsg* msg = make_msg(m);
      if (!msg || js_PublishMsgAsync(batch_js_, &msg, nullptr) != NATS_OK) {
        natsMsg_Destroy(msg); // no effect once nats.c owns it
        break;                // the rest stay unpublished: sent next time
      }
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = timeout_ms;
    if (js_PublishAsyncComplete(batch_js_, &po) != NATS_OK) {
      // Still unacked: taken back, and counted as not published.
      natsMsgList pending;
      if (js_PublishAsyncGetPendingList(&pending, batch_js_) == NATS_OK)
        natsMsgList_Destroy(&pending);
    }
  }
  std::lock_guard<std::mutex> guard{batch->mtx};
  return batch->seq;
}

} // namespace troupe
