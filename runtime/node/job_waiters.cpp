#include "runtime/node/job_waiters.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "messages/errc.hpp"
#include "runtime/node/status_api.hpp"

namespace troupe {

namespace {

/// How many job ids one state query asks about.
constexpr std::size_t ids_per_query = 1000;

bool terminal_state(const std::string& s) {
  return s == "succeeded" || s == "dead_lettered" || s == "cancelled";
}

/// A terminal event, recognised without parsing the body: encode_event
/// writes `"type":"job.<state>"` exactly so.
bool ends_job(std::string_view body) {
  for (auto t : {R"("type":"job.succeeded")", R"("type":"job.dead_lettered")",
                 R"("type":"job.cancelled")"})
    if (body.find(t) != std::string_view::npos)
      return true;
  return false;
}

} // namespace

job_waiters::job_waiters(std::shared_ptr<nats_client> nats, std::string prefix,
                         std::shared_ptr<status_store> store,
                         std::size_t max_waiters,
                         std::chrono::milliseconds poll)
    : nats_(std::move(nats)), prefix_(std::move(prefix)),
      store_(std::move(store)), max_(max_waiters), poll_(poll) {}

job_waiters::~job_waiters() {
  stop();
}

void job_waiters::start() {
  thread_ = std::thread([this] { run(); });
}

void job_waiters::stop() {
  std::map<std::string, watched> left;
  {
    std::lock_guard<std::mutex> guard{sig_->mtx};
    stopping_ = true;
    left.swap(jobs_);
    count_ = 0;
    per_tenant_.clear();
  }
  sig_->cv.notify_all();
  if (thread_.joinable())
    thread_.join();
  for (auto& [id, w] : left) {
    w.events.close();
    answer(id, std::move(w.waiters));
  }
}

std::size_t job_waiters::size() const {
  std::lock_guard<std::mutex> guard{sig_->mtx};
  return count_;
}

bool job_waiters::add(const std::string& job_id, const std::string& pipeline,
                      waiter w) {
  bool first = false;
  {
    std::lock_guard<std::mutex> guard{sig_->mtx};
    // One tenant may hold a quarter of the node's waits: a flood of waits
    // for made-up ids cannot lock the others out.
    auto& mine = per_tenant_[w.tenant];
    if (stopping_ || count_ >= max_ ||
        mine >= std::max<std::size_t>(1, max_ / 4))
      return false;
    auto& j = jobs_[job_id];
    first = j.waiters.empty();
    j.waiters.push_back(std::move(w));
    ++count_;
    ++mine;
  }
  if (first)
    subscribe(job_id, pipeline);
  {
    // The job may have ended between the caller's read and the
    // subscription: check it once now.
    std::lock_guard<std::mutex> guard{sig_->mtx};
    sig_->ready.insert(job_id);
  }
  sig_->cv.notify_one();
  return true;
}

void job_waiters::subscribe(const std::string& job_id,
                            const std::string& pipeline) {
  subjects subj{prefix_};
  auto subject = subj.events(pipeline.empty() ? "*" : pipeline, job_id);
  auto sub = nats_subscription::open(
      *nats_, subject, [sig = sig_, job_id](nats_msg m) {
        if (!ends_job(m.data()))
          return;
        {
          std::lock_guard<std::mutex> guard{sig->mtx};
          sig->ready.insert(job_id);
        }
        sig->cv.notify_one();
      });
  if (!sub) {
    // Not fatal: the periodic read from the store still finds the end.
    spdlog::debug("wait: cannot follow events of job '{}': {}", job_id,
                  describe(sub.error()));
    return;
  }
  nats_subscription unused;
  {
    std::lock_guard<std::mutex> guard{sig_->mtx};
    auto it = jobs_.find(job_id);
    if (it != jobs_.end() && !it->second.events)
      it->second.events = std::move(*sub);
    else
      unused = std::move(*sub);
  }
}

void job_waiters::run() {
  auto next_poll = clock::now() + poll_;
  for (;;) {
    std::set<std::string> ids;
    {
      std::unique_lock<std::mutex> lock{sig_->mtx};
      auto until = std::min(next_poll, clock::now() + std::chrono::seconds{1});
      sig_->cv.wait_until(lock, until,
                          [&] { return stopping_ || !sig_->ready.empty(); });
      if (stopping_)
        return;
      ids.swap(sig_->ready);
      if (clock::now() >= next_poll) {
        next_poll = clock::now() + poll_;
        for (auto& kv : jobs_)
          ids.insert(kv.first);
      }
    }
    check(ids);
  }
}

void job_waiters::check(const std::set<std::string>& ids) {
  // Ended jobs and their tenants: only waiters of that tenant learn of the
  // end now; another tenant's waiter is answered `not_found` at its
  // deadline, exactly like a waiter for a job that does not exist.
  std::map<std::string, std::string> ended;
  std::vector<std::string> batch;
  for (auto it = ids.begin(); it != ids.end();) {
    batch.clear();
    for (; it != ids.end() && batch.size() < ids_per_query; ++it)
      batch.push_back(*it);
    auto states = store_->states(batch);
    if (!states)
      continue; // deadlines still answer; the next poll asks again
    for (auto& [id, st] : *states)
      if (terminal_state(st.first))
        ended.emplace(id, st.second);
  }
  std::vector<std::pair<std::string, std::vector<waiter>>> due;
  std::vector<nats_subscription> closed;
  {
    std::lock_guard<std::mutex> guard{sig_->mtx};
    auto now = clock::now();
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      auto e = ended.find(it->first);
      auto& ws = it->second.waiters;
      auto split = std::partition(ws.begin(), ws.end(), [&](const waiter& w) {
        bool ends_now = e != ended.end() && e->second == w.tenant;
        return !ends_now && w.deadline > now;
      });
      if (split != ws.end()) {
        for (auto w = split; w != ws.end(); ++w)
          release(w->tenant);
        due.emplace_back(
            it->first, std::vector<waiter>(std::make_move_iterator(split),
                                           std::make_move_iterator(ws.end())));
        ws.erase(split, ws.end());
      }
      if (ws.empty()) {
        closed.push_back(std::move(it->second.events));
        it = jobs_.erase(it);
      } else {
        ++it;
      }
    }
  }
  closed.clear(); // unsubscribes, outside the lock the handlers take
  for (auto& [id, ws] : due)
    answer(id, std::move(ws));
}

void job_waiters::release(const std::string& tenant) {
  --count_;
  auto t = per_tenant_.find(tenant);
  if (t != per_tenant_.end() && --t->second == 0)
    per_tenant_.erase(t);
}

void job_waiters::answer(const std::string& job_id, std::vector<waiter> ws) {
  if (ws.empty())
    return;
  auto st = store_->status(job_id);
  for (auto& w : ws) {
    std::string body;
    if (!st) {
      body = encode_api_error("unavailable",
                              "cannot read the job: " + describe(st.error()));
    } else {
      bool done = *st && terminal_state((*st)->state);
      body = encode_status_reply(*st, job_id, w.tenant, done);
    }
    nats_->publish(w.reply, body);
  }
}

} // namespace troupe
