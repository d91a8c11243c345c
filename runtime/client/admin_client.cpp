#include "runtime/client/admin_client.hpp"
#include "messages/json_guard.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <unistd.h>

#include "runtime/nats/nats_subscription.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

struct gathered {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<json> replies;
};

void on_reply(gathered& g, const nats_msg& m) {
  auto j = parse_json_or_discarded(m.data());
  if (j.is_discarded())
    return;
  {
    std::lock_guard<std::mutex> guard{g.mtx};
    g.replies.push_back(std::move(j));
  }
  g.cv.notify_all();
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
  // The handler keeps `g` alive: late replies may still be in flight after
  // we return.
  auto sub = nats_subscription::open(nats, inbox,
                                     [g](nats_msg m) { on_reply(*g, m); });
  if (!sub)
    return {};
  nats.publish_request(subject, inbox, body);
  // The server answers a PING only after the PUB (and the permission error
  // it may have caused), and nats.c records that error before it handles
  // the PONG: after the flush, a refusal is known, not waited for.
  nats.flush();
  auto last_text = nats.last_permission_error();
  bool refused = !last_text.empty() &&
                 (last_text.find("\"" + subject + "\"") != std::string::npos ||
                  last_text.find("\"" + inbox + "\"") != std::string::npos);
  if (refused) {
    sub->close();
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
  sub->close();
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
