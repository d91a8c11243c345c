#pragma once

// The requests of `<prefix>.api.v1.wait` whose job has not ended yet. A
// waited job is followed on its events subject (a terminal event wakes its
// check at once) and, since events are best effort, its state is also read
// from PostgreSQL every `poll` for all waited jobs in one query. A waiter
// is answered from the row when the row is terminal, or at its deadline
// with `"done": false`. No thread is held per waiter: one thread runs the
// checks, and each job has one core NATS subscription while it is waited.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "runtime/nats/nats_client.hpp"
#include "runtime/nats/nats_subscription.hpp"
#include "runtime/pg/status_store.hpp"

namespace troupe {

class job_waiters {
public:
  using clock = std::chrono::steady_clock;

  struct waiter {
    std::string reply;
    std::string tenant;
    clock::time_point deadline;
  };

  job_waiters(std::shared_ptr<nats_client> nats, std::string prefix,
              std::shared_ptr<status_store> store, std::size_t max_waiters,
              std::chrono::milliseconds poll = std::chrono::milliseconds{2000});
  ~job_waiters();

  job_waiters(const job_waiters&) = delete;
  job_waiters& operator=(const job_waiters&) = delete;

  void start();

  /// Answers every waiter from the store with `"done": false` and stops.
  void stop();

  /// Waits for `job_id` (of `pipeline`, "" if it has no row yet); false if
  /// this node already holds `max_waiters`, or its tenant a quarter of
  /// them.
  bool add(const std::string& job_id, const std::string& pipeline, waiter w);

  std::size_t size() const;

private:
  struct watched {
    std::vector<waiter> waiters;
    nats_subscription events;
  };

  void run();
  void subscribe(const std::string& job_id, const std::string& pipeline);
  /// Answers the waiters of the jobs in `ids` that ended, and those whose
  /// deadline passed.
  void check(const std::set<std::string>& ids);
  /// One waiter of `tenant` left (guarded by sig_->mtx).
  void release(const std::string& tenant);
  /// Answers `ws` from the job's row (`"done"` if it is terminal).
  void answer(const std::string& job_id, std::vector<waiter> ws);

  std::shared_ptr<nats_client> nats_;
  std::string prefix_;
  std::shared_ptr<status_store> store_;
  std::size_t max_;
  std::chrono::milliseconds poll_;

  /// What event handlers touch, owned with them: nats.c may deliver one
  /// after its subscription is closed.
  struct signal {
    std::mutex mtx;
    std::condition_variable cv;
    /// Jobs whose events said they ended (or just subscribed): check soon.
    std::set<std::string> ready;
  };

  std::shared_ptr<signal> sig_ = std::make_shared<signal>();
  /// Guarded by sig_->mtx.
  std::map<std::string, watched> jobs_;
  std::size_t count_ = 0;
  /// Waiters per tenant (at most a quarter of max_ each).
  std::map<std::string, std::size_t> per_tenant_;
  bool stopping_ = false;
  std::thread thread_;
};

} // namespace troupe
