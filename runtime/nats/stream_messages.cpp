#include "runtime/nats/stream_messages.hpp"

#include <memory>
#include <utility>

#include <nlohmann/json.hpp>

#include "messages/errc.hpp"
#include "runtime/nats/delivery.hpp"

namespace troupe {

namespace {

caf::error js_failure(natsStatus s, const std::string& what) {
  return make_error(errc::unavailable, what + ": " + natsStatus_GetText(s));
}

using consumer_info_ptr =
    std::unique_ptr<jsConsumerInfo, decltype(&jsConsumerInfo_Destroy)>;

/// What the broker says of consumer `durable` (it owns its strings).
caf::expected<consumer_info_ptr> consumer_info(nats_client& nats,
                                               const std::string& stream,
                                               const std::string& durable) {
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  auto s = js_GetConsumerInfo(&ci, nats.js(), stream.c_str(), durable.c_str(),
                              nullptr, &jerr);
  if (s != NATS_OK)
    return js_failure(s, "consumer info " + durable);
  return consumer_info_ptr{ci, &jsConsumerInfo_Destroy};
}

/// Copies what JetStream stored of message `m` (from js_GetMsg).
stored_message copy_message(natsMsg* m, std::uint64_t seq) {
  stored_message out;
  out.seq = seq;
  out.published_ms = natsMsg_GetTime(m) / 1000000;
  out.subject = natsMsg_GetSubject(m);
  out.data.assign(natsMsg_GetData(m),
                  static_cast<std::size_t>(natsMsg_GetDataLength(m)));
  out.fields = read_delivery(m);
  // A stored message has no delivery metadata: its place in the stream is
  // what names a job published without an id (`js-<seq>-<ms>`).
  out.fields.stream_seq = seq;
  out.fields.published_ms = out.published_ms;
  const char** keys = nullptr;
  int nkeys = 0;
  if (natsMsgHeader_Keys(m, &keys, &nkeys) != NATS_OK)
    return out;
  for (int k = 0; k < nkeys; ++k) {
    const char** values = nullptr;
    int nvalues = 0;
    if (natsMsgHeader_Values(m, keys[k], &values, &nvalues) == NATS_OK) {
      for (int v = 0; v < nvalues; ++v)
        out.headers.emplace_back(keys[k], values[v]);
      free(static_cast<void*>(values));
    }
  }
  free(static_cast<void*>(keys));
  return out;
}

} // namespace

std::string stored_message::header(const std::string& name) const {
  for (auto& [k, v] : headers)
    if (k == name)
      return v;
  return {};
}

caf::expected<consumer_position>
consumer_position_of(nats_client& nats, const std::string& stream,
                     const std::string& durable) {
  auto ci = consumer_info(nats, stream, durable);
  if (!ci)
    return ci.error();
  const auto& c = **ci;
  return consumer_position{c.AckFloor.Stream, c.Delivered.Stream, c.NumPending,
                           static_cast<std::uint64_t>(c.NumAckPending),
                           c.Created / 1000000};
}

caf::expected<std::optional<stored_message>>
next_stored(nats_client& nats, const std::string& stream,
            std::uint64_t from_seq, const std::string& subject) {
  // nats.c 3.4 gets by sequence only; the server finds the next one on a
  // subject ($JS.API.STREAM.MSG.GET with next_by_subj, nats-server 2.9).
  auto reply = nats.request(
      "$JS.API.STREAM.MSG.GET." + stream,
      nlohmann::json{{"seq", from_seq}, {"next_by_subj", subject}}.dump(),
      5000);
  if (!reply)
    return reply.error();
  auto j = nlohmann::json::parse(*reply, nullptr, false);
  if (!j.is_object())
    return make_error(errc::unavailable, "unreadable stream message reply");
  if (j.contains("error")) // 10037: no message found
    return std::optional<stored_message>{};
  auto msg = j.find("message");
  if (msg == j.end() || !msg->is_object() || !msg->contains("seq") ||
      !(*msg)["seq"].is_number_unsigned() || (*msg)["seq"] == 0)
    return make_error(errc::unavailable,
                      "stream message reply without a sequence");
  auto seq = (*msg)["seq"].get<std::uint64_t>();
  natsMsg* m = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  auto s = js_GetMsg(&m, nats.js(), stream.c_str(), seq, nullptr, &jerr);
  if (s != NATS_OK) { // deleted meanwhile: the caller goes on after it
    stored_message gone;
    gone.seq = seq;
    return std::optional<stored_message>{std::move(gone)};
  }
  auto out = copy_message(m, seq);
  natsMsg_Destroy(m);
  return std::optional<stored_message>{std::move(out)};
}

bool answers_lookup(const stored_message& m, const std::string& subject) {
  return m.subject.empty() || m.subject == subject;
}

caf::expected<std::optional<stored_message>>
stored_at(nats_client& nats, const std::string& stream, std::uint64_t seq) {
  natsMsg* m = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  auto s = js_GetMsg(&m, nats.js(), stream.c_str(), seq, nullptr, &jerr);
  if (s != NATS_OK) {
    if (jerr == JSNoMessageFoundErr)
      return std::optional<stored_message>{};
    return js_failure(s, "message " + std::to_string(seq));
  }
  auto out = copy_message(m, seq);
  natsMsg_Destroy(m);
  return std::optional<stored_message>{std::move(out)};
}

namespace {

/// What `read` takes from the stream's info, read once and freed.
template <class Read>
auto from_stream_info(nats_client& nats, const std::string& stream, Read read)
    -> caf::expected<decltype(read(std::declval<const jsStreamInfo&>()))> {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  auto s = js_GetStreamInfo(&si, nats.js(), stream.c_str(), nullptr, &jerr);
  if (s != NATS_OK)
    return js_failure(s, "stream info " + stream);
  auto out = read(*si);
  jsStreamInfo_Destroy(si);
  return out;
}

} // namespace

caf::expected<std::uint64_t> last_sequence(nats_client& nats,
                                           const std::string& stream) {
  return from_stream_info(
      nats, stream, [](const jsStreamInfo& si) { return si.State.LastSeq; });
}

std::string out_of_step(const jsClusterInfo* cluster) {
  if (!cluster || cluster->ReplicasLen == 0)
    return "";
  if (!cluster->Leader || !*cluster->Leader)
    return "no leader";
  for (int i = 0; i < cluster->ReplicasLen; ++i) {
    const auto* p = cluster->Replicas[i];
    std::string name = p && p->Name ? p->Name : "a replica";
    if (!p || p->Offline)
      return name + " is offline";
    if (!p->Current)
      return name + " is not current";
    if (p->Lag > 0)
      return name + " is " + std::to_string(p->Lag) +
             (p->Lag == 1 ? " entry" : " entries") + " behind";
  }
  return "";
}

caf::expected<std::string> replicas_out_of_step(nats_client& nats,
                                                const std::string& stream) {
  return from_stream_info(nats, stream, [](const jsStreamInfo& si) {
    return out_of_step(si.Cluster);
  });
}

caf::expected<std::map<std::string, std::uint64_t>>
stored_per_subject(nats_client& nats, const std::string& stream,
                   const std::string& filter) {
  auto reply =
      nats.request("$JS.API.STREAM.INFO." + stream,
                   nlohmann::json{{"subjects_filter", filter}}.dump(), 5000);
  if (!reply)
    return reply.error();
  auto j = nlohmann::json::parse(*reply, nullptr, false);
  if (!j.is_object() || j.contains("error") || !j.contains("state"))
    return make_error(errc::unavailable, "unreadable stream info reply");
  std::map<std::string, std::uint64_t> out;
  auto subjects = j["state"].value("subjects", nlohmann::json::object());
  for (auto& [subject, n] : subjects.items())
    if (n.is_number_unsigned())
      out[subject] = n.get<std::uint64_t>();
  return out;
}

caf::error step_down_consumer(nats_client& nats, const std::string& stream,
                              const std::string& durable) {
  auto reply = nats.request(
      "$JS.API.CONSUMER.LEADER.STEPDOWN." + stream + "." + durable, "", 5000);
  if (!reply)
    return reply.error();
  auto j = nlohmann::json::parse(*reply, nullptr, false);
  if (!j.is_object() || !j.value("success", false))
    return make_error(errc::unavailable,
                      "consumer step-down refused: " + reply->substr(0, 200));
  return caf::none;
}

caf::error remake_consumer(nats_client& nats, const std::string& stream,
                           const std::string& durable) {
  auto ci = consumer_info(nats, stream, durable);
  if (!ci)
    return ci.error();
  // The config read back is the one to add again (ci owns its strings).
  jsErrCode jerr = static_cast<jsErrCode>(0);
  auto s = js_DeleteConsumer(nats.js(), stream.c_str(), durable.c_str(),
                             nullptr, &jerr);
  if (s != NATS_OK) {
    // 2.9.10 answers a deletion only from the consumer's leader; one
    // without a leader times out and may still have been deleted.
    auto there = nats.consumer_exists(stream, durable);
    if (there && !*there)
      s = NATS_OK;
  }
  if (s == NATS_OK) {
    jsConsumerInfo* made = nullptr;
    s = js_AddConsumer(&made, nats.js(), stream.c_str(), (*ci)->Config, nullptr,
                       &jerr);
    if (made)
      jsConsumerInfo_Destroy(made);
  }
  if (s != NATS_OK)
    return js_failure(s, "remake consumer " + durable + " (js error " +
                             std::to_string(static_cast<int>(jerr)) + ")");
  return caf::none;
}

caf::error delete_stored(nats_client& nats, const std::string& stream,
                         std::uint64_t seq) {
  jsErrCode jerr = static_cast<jsErrCode>(0);
  auto s = js_DeleteMsg(nats.js(), stream.c_str(), seq, nullptr, &jerr);
  if (s != NATS_OK)
    return js_failure(s, "delete message " + std::to_string(seq));
  return caf::none;
}

} // namespace troupe
