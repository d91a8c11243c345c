#include "runtime/admin_client.hpp"
#include "messages/json_guard.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <unistd.h>

namespace troupe {

namespace {

using json = nlohmann::json;

struct gathered {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<json> replies;
};

void on_reply(natsConnection*, natsSubscription*, natsMsg* m, void* closure) {
  auto* g = static_cast<std::shared_ptr<gathered>*>(closure);
  auto j = parse_json_or_discarded(
      {natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m))});
  natsMsg_Destroy(m);
  if (j.is_discarded())
    return;
  {
    std::lock_guard<std::mutex> guard{(*g)->mtx};
    (*g)->replies.push_back(std::move(j));
  }
  (*g)->cv.notify_all();
}

std::string new_inbox(const std::string& prefix) {
  static std::atomic<std::uint64_t> counter{0};
  char inbox[112];
  std::snprintf(
      inbox, sizeof(inbox), ".troupe_admin.%d.%lld.%llu", getpid(),
      static_cast<long long>(
          std::chrono::steady_clock::now().time_since_epoch().count()),
      static_cast<unsigned long long>(++counter));
  return prefix + inbox;
}

} // namespace

std::vector<json> admin_gather(nats_client& nats, const std::string& subject,
                               const std::string& body,
                               std::chrono::milliseconds wait,
                               std::size_t expect,
                               const std::function<bool(const json&)>& enough) {
  auto g = std::make_shared<gathered>();
  auto inbox = new_inbox(nats.inbox_prefix());
  natsSubscription* sub = nullptr;
  // The callback's closure owns a reference until the subscription is
  // completely gone (late replies may still be in flight).
  auto* keep = new std::shared_ptr<gathered>(g);
  if (natsConnection_Subscribe(&sub, nats.conn(), inbox.c_str(), on_reply,
                               keep) != NATS_OK) {
    delete keep;
    return {};
  }
  natsSubscription_SetOnCompleteCB(
      sub, [](void* p) { delete static_cast<std::shared_ptr<gathered>*>(p); },
      keep);
  natsConnection_PublishRequest(nats.conn(), subject.c_str(), inbox.c_str(),
                                body.data(), static_cast<int>(body.size()));
  // The server answers a PING only after the PUB (and the permission error
  // it may have caused), and nats.c records that error before it handles
  // the PONG: after the flush, a refusal is known, not waited for.
  natsConnection_Flush(nats.conn());
  const char* last = nullptr;
  auto last_status = natsConnection_GetLastError(nats.conn(), &last);
  std::string last_text = last ? last : "";
  bool refused = last_status == NATS_NOT_PERMITTED &&
                 (last_text.find("\"" + subject + "\"") != std::string::npos ||
                  last_text.find("\"" + inbox + "\"") != std::string::npos);
  if (refused) {
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    // <prefix>.admin.<target>.<class>.<verb>
    std::string cls = "read";
    auto dot = subject.rfind('.');
    auto dot2 = dot == std::string::npos ? dot : subject.rfind('.', dot - 1);
    if (dot2 != std::string::npos)
      cls = subject.substr(dot2 + 1, dot - dot2 - 1);
    return {json{{"ok", false},
                 {"error",
                  {{"code", "permission_denied"},
                   {"rights", cls},
                   {"message", last_text}}}}};
  }
  std::vector<json> out;
  {
    std::unique_lock<std::mutex> lock{g->mtx};
    g->cv.wait_for(lock, wait, [&] {
      if (enough)
        for (auto& r : g->replies)
          if (enough(r))
            return true;
      return expect > 0 && g->replies.size() >= expect;
    });
    out = g->replies;
  }
  natsSubscription_Unsubscribe(sub);
  natsSubscription_Destroy(sub);
  return out;
}

json admin_request(nats_client& nats, const std::string& subject,
                   const json& body, std::chrono::milliseconds wait) {
  auto replies =
      admin_gather(nats, subject, body.is_null() ? "" : body.dump(), wait, 1);
  if (replies.empty())
    return json{{"ok", false},
                {"error",
                 {{"code", "no_answer"},
                  {"message", "no troupe node answered on " + subject +
                                  " within " + std::to_string(wait.count()) +
                                  " ms (is a node running?)"}}}};
  return replies.front();
}

} // namespace troupe
