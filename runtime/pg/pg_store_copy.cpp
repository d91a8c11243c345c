#include "runtime/pg/pg_store_copy.hpp"

#include <cstdio>
#include <ctime>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "messages/json_codec.hpp"
#include "runtime/pg/attempt_fold.hpp"

namespace troupe {

namespace {

/// `ms` since the epoch as a PostgreSQL timestamptz literal (UTC).
std::string pg_timestamp(std::int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%03d+00",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

std::optional<std::string> null_if_empty(const std::string& s) {
  if (s.empty())
    return std::nullopt;
  return s;
}

/// A checkpoint holds its successful attempt (runtime/pg/attempt_fold.hpp)
/// in life, node and started_at; all three are null otherwise.
void copy_checkpoints(pqxx::work& w,
                      const std::vector<const job_write*>& jobs) {
  pqxx::stream_to out{w, "stage_checkpoints",
                      std::vector<std::string>{"job_id", "stage_index", "stage",
                                               "output", "attempts",
                                               "duration_ms", "finished_at",
                                               "life", "node", "started_at"}};
  for (const auto* x : jobs)
    for (const auto& cp : x->checkpoints) {
      const auto* a = folded_attempt(*x, cp);
      out << std::make_tuple(
          x->job_id, cp.stage_index, cp.stage,
          cp.output.empty() ? "null" : cp.output, cp.attempts, cp.duration_ms,
          pg_timestamp(cp.finished_at_ms),
          a ? std::optional<int>{a->life} : std::nullopt,
          a ? std::optional<std::string>{a->node} : std::nullopt,
          a ? std::optional<std::string>{pg_timestamp(a->started_at_ms)}
            : std::nullopt);
    }
  out.complete();
}

/// The attempts no checkpoint holds: failures, and successes of stages
/// without a checkpoint (a spawning stage). Most batches of first-attempt
/// successes have none, and then no COPY is started at all.
void copy_attempts(pqxx::work& w, const std::vector<const job_write*>& jobs) {
  std::vector<std::pair<const job_write*, const attempt_record*>> rows;
  for (const auto* x : jobs)
    for (const auto& a : x->attempts)
      if (!is_folded(*x, a))
        rows.emplace_back(x, &a);
  if (rows.empty())
    return;
  pqxx::stream_to out{w, "stage_attempts",
                      std::vector<std::string>{"job_id", "life", "stage_index",
                                               "attempt", "stage", "node", "ok",
                                               "error_code", "error_message",
                                               "started_at", "duration_ms"}};
  for (const auto& [x, a] : rows)
    out << std::make_tuple(
        x->job_id, a->life, a->stage_index, a->attempt, a->stage, a->node,
        a->ok, null_if_empty(a->error_code), null_if_empty(a->error_message),
        pg_timestamp(a->started_at_ms), a->duration_ms);
  out.complete();
}

} // namespace

/// Checkpoints, attempts and events of jobs this transaction created, with
/// COPY: the fastest way into PostgreSQL (no JSON record set to parse, no
/// plan). No conflict is possible: their job row did not exist until now.
/// Writes to existing jobs keep the INSERT ... ON CONFLICT statements, so a
/// write re-sent after an ambiguous failure stays idempotent.
void copy_children(pqxx::work& w, const std::vector<const job_write*>& jobs) {
  copy_checkpoints(w, jobs);
  copy_attempts(w, jobs);
  {
    pqxx::stream_to out{w, "job_events",
                        std::vector<std::string>{"job_id", "type", "time",
                                                 "node", "stage", "attempt",
                                                 "body"}};
    for (const auto* x : jobs)
      for (const auto& ev : x->events)
        out << std::make_tuple(x->job_id, ev.type, pg_timestamp(ev.time_ms),
                               ev.node, null_if_empty(ev.stage),
                               ev.attempt == 0 ? std::optional<int>{}
                                               : std::optional<int>{ev.attempt},
                               encode_logged_event(ev));
    out.complete();
  }
}

} // namespace troupe
