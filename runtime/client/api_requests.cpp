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
/// Wait requests in flight at once.
constexpr std::size_t wait_window = 256;

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

namespace {

/// Asks once about the jobs `pending[from..to)`, all requests at once:
/// each may wait its whole slice without holding up another. Fills `out`;
/// the jobs to ask about again go to `again`.
caf::error wait_batch(nats_client& nats, const subjects& subj,
                      const std::vector<std::string>& job_ids,
                      const std::vector<std::size_t>& pending, std::size_t from,
                      std::size_t to, const std::string& tenant,
                      std::int64_t slice, std::vector<job_end>& out,
                      std::vector<std::size_t>& again) {
  std::vector<std::string> bodies;
  for (auto k = from; k < to; ++k) {
    nlohmann::json req{{"job_id", job_ids[pending[k]]}, {"timeout_ms", slice}};
    if (!tenant.empty())
      req["tenant"] = tenant;
    bodies.push_back(req.dump());
  }
  auto replies =
      request_many(nats, subj.api("wait"), bodies, static_cast<int>(to - from),
                   std::chrono::milliseconds{slice + 30000});
  if (!replies)
    return replies.error();
  for (auto k = from; k < to; ++k) {
    auto i = pending[k];
    out[i] = end_of(job_ids[i], (*replies)[k - from]);
    if (ask_again(out[i]) && slice > 0)
      again.push_back(i);
  }
  return caf::none;
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
  while (!pending.empty()) {
    std::vector<std::size_t> again;
    for (std::size_t from = 0; from < pending.size(); from += wait_window) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - clock::now())
                      .count();
      auto slice = std::clamp<std::int64_t>(left, 0, wait_slice_ms);
      auto to = std::min(pending.size(), from + wait_window);
      if (auto err = wait_batch(nats, subj, job_ids, pending, from, to, tenant,
                                slice, out, again))
        return err;
      if (progress)
        progress(job_ids.size() - (pending.size() - to) - again.size(),
                 job_ids.size());
    }
    pending.swap(again);
    if (!pending.empty())
      std::this_thread::sleep_for(std::chrono::milliseconds{200});
  }
  return out;
}

} // namespace troupe
