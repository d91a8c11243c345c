#pragma once

// The submit API's record of what the stream accepted. The stream is the
// only other copy of a job submitted through the API until a node claims
// it, and nats-server 2.9.10 was seen to lose acknowledged messages in its
// replication (chaos suite, docs/reliability.md). Each accepted submission
// is written here with its body and its message's stream sequence; the
// stranded sweeper (runtime/node/stranded_sweeper.hpp) publishes again the
// submissions whose job has no row and whose message is gone, and forgets
// those whose job has one.
//
// A submission accepted while PostgreSQL is away is kept in memory (at most
// `backlog_bytes_max` of bodies) and written once it is back (chaos seed 3,
// session 18: two jobs accepted during an outage had the stream as their
// only copy, and the broker lost them). What a node that dies before then
// held is the one gap left, counted in troupe_submissions_unlogged_total.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

namespace troupe {

class lazy_connection;

/// One accepted submission, as published.
struct logged_submission {
  std::string job_id;
  std::string pipeline;
  std::string subject;
  std::string body;
  std::uint64_t stream_seq = 0;
};

class submission_log {
public:
  /// At most `connections` writes at once (the submit API's workers).
  submission_log(std::string pg_url, std::size_t connections);
  ~submission_log();

  submission_log(const submission_log&) = delete;
  submission_log& operator=(const submission_log&) = delete;

  /// Writes `s`; a job already logged keeps its first record (a client's
  /// retry under the same key is the same message). Thread-safe. A
  /// connection PostgreSQL dropped is made again once before `s` counts as
  /// unwritable; then `s` waits in the backlog, written with the next
  /// submission that is, or by flush_backlog(); an error only when the
  /// backlog is full too.
  caf::error record(const logged_submission& s);

  /// Writes the submissions kept while PostgreSQL was away; how many. On
  /// an error they stay kept. Thread-safe (the sweeper's loop, every node).
  caf::expected<std::size_t> flush_backlog();

  /// Submissions kept for a later write now.
  std::size_t backlog() const;

  /// Keeps the backlog on local disk too (runtime/common/line_spool.hpp):
  /// a submission kept while PostgreSQL is away is on disk before record()
  /// returns, and a node killed meanwhile finds it there when it starts
  /// again. Loads what an earlier run of this node left in `path`; call
  /// before the first record(). Errors: unavailable (cannot open or lock
  /// the file, saying which).
  caf::error use_spool(const std::string& path);

  /// The most body bytes kept in the backlog; beyond it, a submission is
  /// not kept (the stream still has it).
  static constexpr std::size_t backlog_bytes_max = 64u << 20;

  // -- for the stranded sweeper (one node at a time, under its lock)

  /// Submissions older than `min_age_ms` whose job has no row yet, oldest
  /// first.
  caf::expected<std::vector<logged_submission>>
  unclaimed(std::int64_t min_age_ms, int limit);

  /// The submission was published again as message `seq`.
  caf::error republished(const std::string& job_id, std::uint64_t seq);

  /// Forgets submissions whose job has a row (a node claimed it, or an
  /// operator cancelled it): the store has the job now. Returns how many.
  caf::expected<std::int64_t> forget_claimed(int limit);

private:
  caf::error write(const logged_submission& s);
  caf::expected<std::size_t> write_kept(lazy_connection& conn);

  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace troupe
