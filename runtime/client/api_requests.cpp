#include "runtime/client/api_requests.hpp"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "messages/errc.hpp"
#include "messages/json_guard.hpp"
#include "runtime/nats/nats_subscription.hpp"

namespace troupe {

namespace {

struct reply_collector {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<std::string> replies;
  std::vector<bool> got;
  std::size_t received = 0;
  std::function<void(std::size_t)> on_reply;
};

void on_reply_msg(reply_collector* rc, const nats_msg& msg) {
  std::string subject{msg.subject()};
  auto dot = subject.rfind('.');
  std::size_t idx = 0;
  try {
    idx = std::stoul(subject.substr(dot + 1));
  } catch (...) {
    return;
  }
  std::function<void(std::size_t)> cb;
  {
    std::lock_guard<std::mutex> guard{rc->mtx};
    if (idx >= rc->replies.size() || rc->got[idx])
      return;
    rc->got[idx] = true;
    rc->replies[idx] = std::string{msg.data()};
    ++rc->received;
    cb = rc->on_reply;
  }
  rc->cv.notify_all();
  if (cb)
    cb(idx);
}

std::string random_inbox(const nats_client& nats) {
  char buf[64];
  std::mt19937_64 rng{std::random_device{}()};
  std::snprintf(buf, sizeof(buf), ".troupe.%016llx",
                static_cast<unsigned long long>(rng()));
  return nats.inbox_prefix() + buf;
}

} // namespace

caf::expected<std::vector<std::string>>
request_many(nats_client& nats, const std::string& subject,
             const std::vector<std::string>& bodies, int window,
             std::chrono::milliseconds timeout,
             const std::function<void(std::size_t)>& on_reply) {
  auto rc = std::make_shared<reply_collector>();
  rc->replies.resize(bodies.size());
  rc->got.assign(bodies.size(), false);
  rc->on_reply = on_reply;
  auto inbox = random_inbox(nats);
  // A late reply may still be in delivery after we return: the handler
  // keeps the collector alive.
  subscribe_options so;
  so.unbounded_pending = true;
  auto sub = nats_subscription::open(
      nats, inbox + ".*", [rc](nats_msg msg) { on_reply_msg(rc.get(), msg); },
      so);
  if (!sub)
    return sub.error();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  caf::error failure;
  for (std::size_t i = 0; i < bodies.size() && !failure; ++i) {
    {
      // Pipelining window: at most `window` requests unanswered.
      std::unique_lock<std::mutex> lock{rc->mtx};
      if (!rc->cv.wait_until(lock, deadline, [&] {
            return i - rc->received < static_cast<std::size_t>(window);
          })) {
        failure = make_error(errc::unavailable,
                             "timed out waiting for " + subject + " replies");
        break;
      }
    }
    failure = nats.publish_request(subject, inbox + "." + std::to_string(i),
                                   bodies[i]);
  }
  if (!failure) {
    nats.flush();
    std::unique_lock<std::mutex> lock{rc->mtx};
    if (!rc->cv.wait_until(lock, deadline,
                           [&] { return rc->received == bodies.size(); }))
      failure =
          make_error(errc::unavailable, "no reply from " + subject +
                                            " (is a troupe node running?)");
  }
  sub->close();
  if (failure)
    return failure;
  std::lock_guard<std::mutex> guard{rc->mtx};
  return rc->replies;
}

namespace {

/// How long one wait request waits at most (the API allows 5 minutes).
constexpr std::int64_t wait_slice_ms = 60000;

job_end end_of(const std::string& id, const std::string& reply) {
  job_end e;
  e.job_id = id;
  auto j = parse_json_or_discarded(reply);
  if (j.is_object() && j.value("ok", false) && j.contains("job")) {
    e.job = j["job"];
    e.state = e.job.value("state", "");
    e.done = j.value("done", false);
  } else if (j.is_object() && j.contains("error") && j["error"].is_object()) {
    e.error_code = j["error"].value("code", "");
    e.error_message = j["error"].value("message", "");
  } else {
    e.error_code = "invalid_reply";
    e.error_message = reply.substr(0, 256);
  }
  return e;
}

/// `unavailable` (a node full of waits, or without PostgreSQL) and
/// `not_found` (no node has taken the job yet) are worth asking again.
bool ask_again(const job_end& e) {
  return !e.done && (e.error_code.empty() || e.error_code == "unavailable" ||
                     e.error_code == "not_found");
}

} // namespace

caf::expected<std::vector<job_end>>
wait_for_jobs(nats_client& nats, const subjects& subj,
              const std::vector<std::string>& job_ids,
              const std::string& tenant, std::chrono::milliseconds timeout,
              const std::function<void(std::size_t, std::size_t)>& progress) {
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + timeout;
  std::vector<job_end> out(job_ids.size());
  std::vector<std::size_t> pending(job_ids.size());
  for (std::size_t i = 0; i < pending.size(); ++i)
    pending[i] = i;
  std::size_t ended = 0;
  while (!pending.empty()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - clock::now())
                    .count();
    auto slice = std::clamp<std::int64_t>(left, 0, wait_slice_ms);
    std::vector<std::string> bodies;
    for (auto i : pending) {
      nlohmann::json req{{"job_id", job_ids[i]}, {"timeout_ms", slice}};
      if (!tenant.empty())
        req["tenant"] = tenant;
      bodies.push_back(req.dump());
    }
    auto replies = request_many(nats, subj.api("wait"), bodies, 256,
                                std::chrono::milliseconds{slice + 30000});
    if (!replies)
      return replies.error();
    std::vector<std::size_t> again;
    for (std::size_t k = 0; k < pending.size(); ++k) {
      auto i = pending[k];
      out[i] = end_of(job_ids[i], (*replies)[k]);
      if (ask_again(out[i]) && clock::now() < deadline)
        again.push_back(i);
      else
        ++ended;
    }
    if (progress)
      progress(ended, job_ids.size());
    pending.swap(again);
    if (!pending.empty())
      std::this_thread::sleep_for(std::chrono::milliseconds{200});
  }
  return out;
}

} // namespace troupe
