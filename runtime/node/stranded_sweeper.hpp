#pragma once

// Messages the broker stopped tracking. nats-server 2.9.10 was seen (chaos
// suite, docs/reliability.md) to keep messages in the work-queue stream
// that its consumer had handed out but no longer had pending (below the
// ack floor, or above it with nothing pending): nothing would ever deliver
// them again, and a job whose message it was is lost (no row) or stuck
// (queued, replayed). A message this sweeper has seen behind its consumer's
// delivered sequence, in every sweep for at least the duplicate window +
// ack_wait + 5 s (its age since publication says nothing: in a backlog a
// message is handed out long after it was published, and a node may be
// about to claim it), is stranded unless a node holds its job under a live
// lease (PostgreSQL tells). A lane with stranded messages has its consumer
// made again (remake_consumer, at most once per min_age): in a work-queue
// stream the new consumer hands out every message still stored, and the
// nodes decide each as any delivery (a job that ended or waits in the
// store acks it as stale; one that must run runs). Nothing is deleted or
// published again: nats-server 2.9.10 reset two of three replicas right
// after the sweeper's deletions (chaos, sessions 18 and 20).
// The sweeper also reads the submit API's log (runtime/pg/submission_log.hpp):
// a submission older than that whose job has no row, and whose message the
// consumer has passed (or the stream no longer reaches), is looked for in
// the stream; gone, it is published again under its job id. Submissions
// whose job has a row are forgotten. A job the scheduler or a replay queued
// (its row names its message's sequence) whose message is gone goes back to
// the scheduler, which publishes it as a new generation. A consumer that
// counts fewer messages still to hand out than the stream holds on its
// subject beyond its delivered sequence, in every sweep for min_age, has
// its leadership moved to another replica: 2.9.10 was seen (chaos seed 1) to
// stop handing out hundreds of stored messages, with "0 pending", until
// its servers restarted. Still stuck min_age after that, it is made again
// (remake_consumer): it then hands out every message still stored.
// One node at a time sweeps (a PostgreSQL advisory lock); every node tries
// every `nats.stranded_sweep`.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "messages/delivery.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/nats/stream_messages.hpp"
#include "runtime/pg/stranded_store.hpp"
#include "runtime/pg/submission_log.hpp"

namespace troupe {

/// What the sweeps of this node did, since start (for /metrics).
struct sweeper_stats {
  std::atomic<std::int64_t> stranded_to_run{0};
  std::atomic<std::int64_t> stranded_ended{0};
  std::atomic<std::int64_t> lost{0};
  std::atomic<std::int64_t> requeued{0};
  std::atomic<std::int64_t> stuck_consumers{0};
  std::atomic<std::int64_t> remade_consumers{0};
  std::atomic<std::int64_t> deferred{0};
  std::atomic<std::int64_t> misfiled{0};
};

class stranded_sweeper {
public:
  struct result {
    int stranded = 0;        ///< handed out long ago, its job not held
    int stranded_to_run = 0; ///< of them: jobs that must run
    int stranded_ended = 0;  ///< of them: jobs ended or waiting in the store
    int lost = 0;     ///< submissions whose message was gone, published again
    int requeued = 0; ///< queued jobs whose message was gone, to the scheduler
    int stuck_consumers = 0;    ///< consumers found stuck (moved or remade)
    int remade_consumers = 0;   ///< still stuck after a move: made again
    std::int64_t forgotten = 0; ///< logged submissions whose job has a row
    /// Lookups on one subject the broker answered with another's message
    /// (its subject index is broken: a rolling restart mends it), and the
    /// first of them, "asked S, got T at N".
    int misfiled = 0;
    std::string first_misfiled;
    /// Why the stream's replicas are out of step ("no leader", "s2 is not
    /// current", or unreadable), "" when they are in step. Swept all the
    /// same unless it has no leader or cannot be read.
    std::string deferred;
  };

  stranded_sweeper(std::shared_ptr<nats_client> nats, nats_config ncfg,
                   std::string pg_url, std::vector<std::string> pipelines,
                   input_limits limits);
  ~stranded_sweeper();

  stranded_sweeper(const stranded_sweeper&) = delete;
  stranded_sweeper& operator=(const stranded_sweeper&) = delete;

  /// The submit API's log to read and trim; set before start().
  void set_submission_log(std::shared_ptr<submission_log> log);

  /// Also sweeps the high-priority band of `pipeline` (its own subject and
  /// consumer); call before start().
  void add_high_band(const std::string& pipeline);

  /// Sweeps every `nats.stranded_sweep` (no-op when it is 0).
  void start();
  void stop();

  /// One sweep in the calling thread (skipped when another node sweeps).
  result sweep_once();

  std::shared_ptr<sweeper_stats> stats() const { return stats_; }

private:
  /// A subject and the consumer that hands it out: a pipeline, or its
  /// high-priority band.
  struct lane {
    std::string pipeline;
    std::string subject;
    std::string consumer;
  };
  lane lane_of(const std::string& pipeline, const std::string& subject) const;

  void loop();
  void sweep_pipelines(result& r);
  static void log_deferral(const std::string& why);
  void flush_kept_submissions();
  void sweep_pipeline(const lane& l, result& r);
  void note_misfiled(const lane& l, const stored_message& m, result& r);
  bool stranded_now(const stored_message& m, const std::string& pipeline,
                    result& r);
  static void log_result(const result& r);
  bool seen_long_enough(std::uint64_t seq);
  /// Consumers' delivered sequences, per consumer, read once a sweep.
  using positions = std::map<std::string, std::uint64_t>;
  void sweep_lost(result& r);
  void watch_consumers(result& r);
  enum class mend { none, move, remake };
  mend stuck_mend(const std::string& consumer, bool unaccounted);
  void move_leader(const std::string& consumer, std::uint64_t pending,
                   std::uint64_t ahead);
  bool remake(const std::string& consumer, const std::string& why);
  void sweep_submissions(std::uint64_t last_seq, positions& delivered,
                         result& r);
  void sweep_queued(std::uint64_t last_seq, positions& delivered, result& r);
  bool message_passed(const lane& l, std::uint64_t seq, std::uint64_t last_seq,
                      positions& delivered);
  bool still_stored(std::uint64_t seq, const std::string& job_id);
  bool missing_long_enough(const std::string& job_id, const lane& l,
                           std::uint64_t seq, std::uint64_t last_seq,
                           positions& delivered);

  std::shared_ptr<nats_client> nats_;
  nats_config ncfg_;
  stranded_store store_;
  std::shared_ptr<submission_log> log_;
  std::shared_ptr<sweeper_stats> stats_ = std::make_shared<sweeper_stats>();
  std::vector<lane> lanes_;
  input_limits limits_;
  std::chrono::milliseconds min_age_;
  /// Messages seen behind their consumer, by stream sequence: when this
  /// sweeper first saw each (forgotten once a sweep no longer sees it).
  std::map<std::uint64_t, std::chrono::steady_clock::time_point> sighted_;
  std::map<std::uint64_t, std::chrono::steady_clock::time_point> seen_now_;
  /// Sightings to drop after this sweep: handed out again by a consumer
  /// made again.
  std::vector<std::uint64_t> forget_;
  /// Jobs whose message should have been taken and is not in the stream,
  /// by job id: since when (forgotten once a sweep finds it or acts).
  std::map<std::string, std::chrono::steady_clock::time_point> missing_;
  std::map<std::string, std::chrono::steady_clock::time_point> missing_now_;
  /// Pipelines whose consumer counts fewer messages to hand out than the stream
  /// holds on its subject, since when.
  std::map<std::string, std::chrono::steady_clock::time_point> stuck_since_;
  /// When this node moved the leader of each consumer still stuck.
  std::map<std::string, std::chrono::steady_clock::time_point> moved_at_;
  /// When this node last made each consumer again.
  std::map<std::string, std::chrono::steady_clock::time_point> remade_at_;
  /// Stored messages of each pipeline up to its consumer's delivered
  /// sequence, counted by this sweep's walk (absent: not walked through).
  std::map<std::string, std::uint64_t> walked_;
  std::mutex mtx_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::string last_deferred_; ///< the last sweep's, to log changes only
  std::thread thread_;
};

} // namespace troupe
