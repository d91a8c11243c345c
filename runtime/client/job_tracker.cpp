#include "runtime/client/job_tracker.hpp"
#include "messages/json_guard.hpp"
#include "runtime/client/api_requests.hpp"

#include <atomic>
#include <random>

#include <nlohmann/json.hpp>

#include "messages/errc.hpp"
#include "messages/event_type.hpp"
#include "messages/json_codec.hpp"
#include "runtime/nats/nats_subscription.hpp"

namespace troupe {

struct job_tracker::impl {
  std::shared_ptr<nats_client> nats;
  subjects subj;
  std::string pipeline;
  nats_subscription sub;
  mutable std::mutex mtx;
  std::condition_variable cv;
  std::map<std::string, tracked_job> jobs;
  /// Terminal events that arrived before submitted() (fast jobs).
  std::map<std::string, tracked_job> early;
  std::size_t done = 0;
};

namespace {

void on_event(job_tracker::impl* im, const nats_msg& msg) {
  auto ev = decode_event(msg.data());
  if (!ev)
    return;
  auto type = type_of(*ev);
  auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> guard{im->mtx};
  auto i = im->jobs.find(ev->job_id);
  tracked_job* tj = nullptr;
  if (i != im->jobs.end())
    tj = &i->second;
  else
    tj = &im->early[ev->job_id];
  if (type == event_type::job_retrying)
    ++tj->retries;
  if (type == event_type::job_started &&
      tj->started == std::chrono::steady_clock::time_point{})
    tj->started = now;
  if (type && is_terminal(*type) && tj->state.empty()) {
    tj->state = to_string(terminal_state(*type)); // "succeeded", ...
    tj->error = ev->error;
    tj->finished = now;
    tj->node_latency_ms = ev->latency_ms;
    if (i != im->jobs.end()) {
      ++im->done;
      im->cv.notify_all();
    }
  }
}

} // namespace

job_tracker::job_tracker(std::shared_ptr<nats_client> nats, subjects subj,
                         std::string pipeline)
    : impl_(std::make_shared<impl>()) {
  impl_->nats = std::move(nats);
  impl_->subj = std::move(subj);
  impl_->pipeline = std::move(pipeline);
}

job_tracker::~job_tracker() {
  impl_->sub.close();
}

caf::error job_tracker::start() {
  auto subject = impl_->subj.prefix + ".events." + impl_->pipeline + ".>";
  // A burst of thousands of events must not be dropped as a slow consumer.
  subscribe_options so;
  so.unbounded_pending = true;
  auto sub = nats_subscription::open(
      *impl_->nats, subject,
      [im = impl_](nats_msg msg) { on_event(im.get(), msg); }, so);
  if (!sub)
    return sub.error();
  impl_->sub = std::move(*sub);
  return impl_->nats->flush();
}

void job_tracker::submitted(const std::string& job_id) {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  auto& tj = impl_->jobs[job_id];
  tj.submitted = std::chrono::steady_clock::now();
  if (auto e = impl_->early.find(job_id); e != impl_->early.end()) {
    tj.retries += e->second.retries;
    if (!e->second.state.empty()) {
      tj.state = e->second.state;
      tj.error = e->second.error;
      tj.finished = e->second.finished;
      tj.node_latency_ms = e->second.node_latency_ms;
      ++impl_->done;
    }
    impl_->early.erase(e);
  }
}

bool job_tracker::wait_all(
    std::chrono::milliseconds timeout,
    const std::function<void(std::size_t, std::size_t)>& progress,
    std::chrono::milliseconds tick) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock{impl_->mtx};
  for (;;) {
    auto done = impl_->done;
    auto total = impl_->jobs.size();
    if (progress) {
      lock.unlock();
      progress(done, total);
      lock.lock();
    }
    if (impl_->done >= impl_->jobs.size())
      return true;
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    impl_->cv.wait_for(lock, tick);
  }
}

std::map<std::string, tracked_job> job_tracker::jobs() const {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  return impl_->jobs;
}

caf::expected<std::vector<submit_reply>>
submit_requests(nats_client& nats, const subjects& subj,
                const std::vector<std::string>& bodies, int window,
                std::chrono::milliseconds timeout,
                const std::function<void(std::size_t)>& on_reply) {
  auto raw =
      request_many(nats, subj.submit(), bodies, window, timeout, on_reply);
  if (!raw)
    return raw.error();
  std::vector<submit_reply> out;
  out.reserve(raw->size());
  for (auto& body : *raw) {
    submit_reply r;
    auto j = parse_json_or_discarded(body);
    if (j.is_object() && j.value("ok", false)) {
      r.ok = true;
      r.job_id = j.value("job_id", "");
    } else if (j.is_object() && j.contains("error") && j["error"].is_object()) {
      r.error_code = j["error"].value("code", "");
      r.error_message = j["error"].value("message", "");
    } else {
      r.error_code = "invalid_reply";
      r.error_message = body;
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::string progress_bar(std::size_t done, std::size_t total, int width) {
  double frac = total == 0 ? 1.0 : static_cast<double>(done) / total;
  int filled = static_cast<int>(frac * width + 0.5);
  std::string bar = "[";
  for (int i = 0; i < width; ++i)
    bar += i < filled ? '#' : '.';
  bar += "] ";
  bar += std::to_string(static_cast<int>(frac * 100 + 0.5)) + "% " +
         std::to_string(done) + "/" + std::to_string(total);
  return bar;
}

} // namespace troupe
