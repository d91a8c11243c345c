#pragma once

// The node's scheduler (docs/scheduling.md): PostgreSQL decides when,
// JetStream delivers now. Every node runs one; they share the due jobs
// without a leader (FOR UPDATE SKIP LOCKED). It:
//   - publishes due jobs (scheduled, enqueued by SQL, long retry waits,
//     rescued) to their pipeline's subject, and marks them `queued` in the
//     same transaction (an outbox);
//   - renews this node's lease (one row in node_leases, whatever the node
//     runs), and rescues the jobs of nodes whose leases expired (epoch + 1,
//     due now);
//   - sleeps until the next job is due, a NOTIFY (troupe.enqueue), or the
//     next renewal, whichever comes first.
// Two threads (leases apart, so that a slow publish never lets them lapse),
// never a CAF scheduler thread.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <caf/error.hpp>

#include "config/config.hpp"
#include "runtime/observe/metrics.hpp"

namespace troupe {

class cron_store;
class nats_client;
class schedule_store;
class tenant_gate;
class tenant_slots;
struct due_job;

/// Counters of a scheduler, readable from any thread.
struct scheduler_stats {
  std::atomic<std::int64_t> published{0};
  std::atomic<std::int64_t> publish_failures{0};
  std::atomic<std::int64_t> rescued{0};
  /// Renewals of the node's lease.
  std::atomic<std::int64_t> renewed{0};
  std::atomic<std::int64_t> store_failures{0};
  /// Jobs fired by cron schedules.
  std::atomic<std::int64_t> fired{0};
  /// How late each job was published after its time.
  histogram lag_seconds{latency_buckets()};
  /// The store's backlog (cluster-wide), counted every 10 s: jobs waiting
  /// for their time, those of them due, and how late the oldest due is.
  std::atomic<std::int64_t> waiting{0};
  std::atomic<std::int64_t> due{0};
  std::atomic<std::int64_t> oldest_due_ms{0};
};

struct job_scheduler_options {
  std::string pg_url;
  std::string node_id;
  /// This node's process in node_leases ('<node id>#<incarnation>'): the
  /// lease that holds every job the node runs.
  std::string lease_owner;
  /// Subject prefix (`<prefix>.jobs.<pipeline>`).
  std::string prefix = "troupe";
  /// The jobs stream (whose consumers tell which pipelines have a high
  /// band).
  std::string stream = "TROUPE_JOBS";
  /// The node's lease; renewed every lease / 4.
  duration_ms lease{5000};
  /// Longest sleep without looking at the store (a NOTIFY can be lost
  /// while the connection is down).
  duration_ms poll{1000};
  /// Due jobs per transaction.
  std::size_t batch = 256;
  /// This node's cron schedules, registered in the store at start.
  std::map<std::string, schedule_config> schedules;
  /// The node's tenant gate (null: no tenant limits), made cluster-wide:
  /// its slots are leased from the store by the lease thread.
  std::shared_ptr<tenant_gate> gate;
  std::shared_ptr<scheduler_stats> stats;
  /// Whether the node's actors still run (null: always). The lease says
  /// "this process runs these jobs", and a delivery of a job does not take
  /// it from a live lease: a process whose actors stalled while this thread
  /// lives must let its lease lapse, so that its jobs are rescued.
  std::function<bool()> actors_alive;
};

class job_scheduler {
public:
  job_scheduler(std::shared_ptr<nats_client> nats, job_scheduler_options opts);
  /// Stops the thread (at most one store call and one publish later).
  ~job_scheduler();
  job_scheduler(const job_scheduler&) = delete;
  job_scheduler& operator=(const job_scheduler&) = delete;

  /// Takes the node's lease (one write): before the node claims its first
  /// job, since a job whose owner has no lease row is not rescued by lease.
  caf::error hold_lease();
  /// Starts both threads (the lease thread renews it every lease / 4).
  void start();
  /// Stops both threads and releases the lease.
  void stop();

  const std::shared_ptr<scheduler_stats>& stats() const { return stats_; }

private:
  void run();
  /// The lease thread: renews this node's leases and rescues expired ones
  /// every lease / 4, never held up by a slow publish.
  void run_leases();
  void keep_leases();
  /// Whether the node's actors stalled (opts_.actors_alive); logs changes.
  bool actors_stalled();
  /// Counts the store's backlog for the metrics.
  void count_backlog();
  /// Leases the slots the gate's tenants want; returns false if some
  /// tenant still waits for a slot.
  void keep_tenant_slots();
  /// Wakes the lease thread early (a job waits for a tenant slot).
  void nudge();
  /// Registers the schedules (until it succeeds) and fires due slots.
  void keep_schedules();
  /// One pass over the due jobs; whether more may be due at once.
  bool publish_pass();
  std::vector<std::uint64_t> publish(const std::vector<due_job>& due);
  std::string subject_for(const due_job& d);
  void sleep_until_due();

  std::shared_ptr<nats_client> nats_;
  job_scheduler_options opts_;
  bool stalled_ = false; ///< the actors stalled at the last renewal
  std::shared_ptr<scheduler_stats> stats_;
  std::unique_ptr<schedule_store> store_;
  std::unique_ptr<schedule_store> lease_store_;
  std::unique_ptr<cron_store> cron_;
  std::unique_ptr<tenant_slots> slots_;
  std::mutex nudge_mtx_;
  std::condition_variable nudge_cv_;
  bool nudged_ = false;
  bool registered_ = false;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::thread lease_thread_;
  std::chrono::steady_clock::time_point quiet_until_{};
  /// Pipelines with a high band (its consumer exists), looked up at most
  /// every 30 s: any node may run the pipeline, not only this one.
  struct band_check {
    bool exists = false;
    std::chrono::steady_clock::time_point checked{};
  };
  std::map<std::string, band_check> bands_;
};

} // namespace troupe
