#include "runtime/pg/submission_log.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "runtime/common/line_spool.hpp"
#include "runtime/pg/lazy_connection.hpp"

namespace troupe {

namespace {

const char* const sql_record = R"SQL(
insert into submissions (job_id, pipeline, subject, body, stream_seq)
values ($1, $2, $3, $4, $5)
on conflict (job_id) do nothing
)SQL";

const char* const sql_unclaimed = R"SQL(
select s.job_id, s.pipeline, s.subject, s.body, s.stream_seq
from submissions s
where s.accepted_at < now() - $1::bigint * interval '1 millisecond'
  and not exists (select 1 from jobs j where j.job_id = s.job_id)
order by s.accepted_at
limit $2
)SQL";

const char* const sql_republished = R"SQL(
update submissions set stream_seq = $2, accepted_at = now()
where job_id = $1
)SQL";

const char* const sql_forget = R"SQL(
delete from submissions where job_id in (
  select s.job_id from submissions s
  where exists (select 1 from jobs j where j.job_id = s.job_id)
  limit $1)
)SQL";

/// The log is a safety net that is read minutes later: its commits do not
/// wait for the WAL flush (PostgreSQL writes it within ~3 x wal_writer_delay),
/// so that a submission's round trip does not pay for an fsync.
void prepare(pqxx::connection& c) {
  pqxx::nontransaction{c}.exec("set synchronous_commit = off");
  c.prepare("record", sql_record);
}

std::string spool_line(const logged_submission& s) {
  return nlohmann::json{{"job_id", s.job_id},
                        {"pipeline", s.pipeline},
                        {"subject", s.subject},
                        {"body", s.body},
                        {"stream_seq", s.stream_seq}}
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<logged_submission> from_spool_line(const std::string& line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object())
    return std::nullopt;
  try {
    return logged_submission{
        j.at("job_id").get<std::string>(), j.at("pipeline").get<std::string>(),
        j.at("subject").get<std::string>(), j.at("body").get<std::string>(),
        j.at("stream_seq").get<std::uint64_t>()};
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

} // namespace

struct submission_log::impl {
  impl(std::string url, std::size_t n)
      : sweep(url, [](pqxx::connection& c) {
          c.prepare("record", sql_record);
          c.prepare("unclaimed", sql_unclaimed);
          c.prepare("republished", sql_republished);
          c.prepare("forget", sql_forget);
        }) {
    for (std::size_t i = 0; i < std::max<std::size_t>(n, 1); ++i)
      free.push_back(std::make_unique<lazy_connection>(url, prepare));
  }

  std::unique_ptr<lazy_connection> take() {
    std::unique_lock<std::mutex> lock{mtx};
    cv.wait(lock, [&] { return !free.empty(); });
    auto c = std::move(free.back());
    free.pop_back();
    return c;
  }

  void give_back(std::unique_ptr<lazy_connection> c) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      free.push_back(std::move(c));
    }
    cv.notify_one();
  }

  bool down() {
    std::lock_guard<std::mutex> guard{mtx};
    return std::chrono::steady_clock::now() < down_until;
  }

  void went_down() {
    std::lock_guard<std::mutex> guard{mtx};
    down_until = std::chrono::steady_clock::now() + std::chrono::seconds{2};
  }

  std::mutex mtx;
  std::condition_variable cv;
  std::vector<std::unique_ptr<lazy_connection>> free;
  /// After a failure, writes are skipped for a while: a submission must not
  /// wait for a connect timeout while PostgreSQL is down.
  std::chrono::steady_clock::time_point down_until{};
  lazy_connection sweep;

  /// Kept while PostgreSQL was away, oldest first (record()'s failures);
  /// on disk first when there is a spool.
  bool keep(const logged_submission& s) {
    std::lock_guard<std::mutex> guard{backlog_mtx};
    if (backlog_bytes + s.body.size() > backlog_bytes_max)
      return false;
    if (!keeping) {
      keeping = true;
      spdlog::warn("submission log: PostgreSQL cannot be written; what the "
                   "API accepts is kept {} until it can",
                   spool ? "in " + spool->path()
                         : std::string{"in memory only (node.spool_dir is "
                                       "not set: a kill loses it)"});
    }
    if (spool)
      if (auto err = spool->append(spool_line(s)))
        spdlog::warn("submission log: {}; the submission is kept in memory "
                     "only",
                     describe(err));
    backlog_bytes += s.body.size();
    backlog.push_back(s);
    return true;
  }

  /// After a write of `n` kept submissions: the spool holds what is kept
  /// now.
  void written(std::size_t n) {
    std::lock_guard<std::mutex> guard{backlog_mtx};
    spdlog::info("submission log: {} submission(s) accepted while PostgreSQL "
                 "could not be written are written now",
                 n);
    keeping = !backlog.empty();
    if (!spool)
      return;
    std::vector<std::string> lines;
    for (const auto& s : backlog)
      lines.push_back(spool_line(s));
    if (auto err = spool->rewrite(lines))
      spdlog::warn("submission log: {} (what it holds is written again "
                   "later, which changes nothing)",
                   describe(err));
  }

  bool has_backlog() {
    std::lock_guard<std::mutex> guard{backlog_mtx};
    return !backlog.empty();
  }

  std::vector<logged_submission> take_backlog() {
    std::lock_guard<std::mutex> guard{backlog_mtx};
    std::vector<logged_submission> out(backlog.begin(), backlog.end());
    backlog.clear();
    backlog_bytes = 0;
    return out;
  }

  void put_back(std::vector<logged_submission> kept) {
    std::lock_guard<std::mutex> guard{backlog_mtx};
    for (auto it = kept.rbegin(); it != kept.rend(); ++it) {
      backlog_bytes += it->body.size();
      backlog.push_front(std::move(*it));
    }
  }

  mutable std::mutex backlog_mtx;
  std::deque<logged_submission> backlog;
  std::size_t backlog_bytes = 0;
  std::unique_ptr<line_spool> spool;
  std::mutex kept_write; ///< write_kept() runs one at a time
  bool keeping = false;  ///< said so in the log (under backlog_mtx)
};

submission_log::submission_log(std::string pg_url, std::size_t connections)
    : impl_(std::make_unique<impl>(std::move(pg_url), connections)) {}

submission_log::~submission_log() = default;

caf::error submission_log::record(const logged_submission& s) {
  auto err = write(s);
  if (!err || impl_->keep(s))
    return caf::none; // written, or kept until PostgreSQL is back
  return make_error(errc::unavailable,
                    describe(err) + "; the backlog is full: not kept");
}

namespace {

caf::expected<bool> insert_on(lazy_connection& conn,
                              const logged_submission& s) {
  return conn.run("logging a submission", [&](pqxx::connection& c) {
    pqxx::nontransaction n{c};
    n.exec_prepared("record", s.job_id, s.pipeline, s.subject, s.body,
                    static_cast<std::int64_t>(s.stream_seq));
    return true;
  });
}

} // namespace

// A connection PostgreSQL dropped (it restarted, or was away) fails its
// next statement even though PostgreSQL is back; only a fresh connection
// tells. Until session 22 that one failure sent the next 2 s of
// submissions to the node's memory, where a kill lost them (chaos seed
// 124: three jobs accepted just after an outage, whose messages the broker
// then lost, were gone).
caf::error submission_log::write(const logged_submission& s) {
  if (impl_->down())
    return make_error(errc::unavailable, "submission log: PostgreSQL is down");
  auto conn = impl_->take();
  bool was_open = conn->open();
  auto r = insert_on(*conn, s);
  if (!r && was_open && code_of(r.error()) == errc::unavailable)
    r = insert_on(*conn, s); // on a new connection: the old one was dropped
  if (r && impl_->has_backlog())
    write_kept(*conn); // PostgreSQL is back: what waits in memory goes now
  impl_->give_back(std::move(conn));
  if (!r) {
    impl_->went_down();
    return r.error();
  }
  return caf::none;
}

// One at a time (the sweeper's thread and an API thread may both try):
// the spool is rewritten to what is still kept once the taken ones are
// committed, and another write's taken ones, not yet committed, would be
// dropped from it.
caf::expected<std::size_t> submission_log::write_kept(lazy_connection& conn) {
  std::unique_lock<std::mutex> one{impl_->kept_write, std::try_to_lock};
  if (!one.owns_lock())
    return std::size_t{0}; // the other write takes them
  auto kept = impl_->take_backlog();
  if (kept.empty())
    return std::size_t{0};
  auto r = conn.run("logging kept submissions", [&](auto& c) {
    pqxx::work tx{c};
    // The spool drops them once this returns: the commit waits for the
    // disk, unlike a single submission's (prepare() above).
    tx.exec("set local synchronous_commit = on");
    for (const auto& s : kept)
      tx.exec_prepared("record", s.job_id, s.pipeline, s.subject, s.body,
                       static_cast<std::int64_t>(s.stream_seq));
    tx.commit();
    return kept.size();
  });
  if (!r)
    impl_->put_back(std::move(kept));
  else
    impl_->written(kept.size());
  return r;
}

caf::error submission_log::use_spool(const std::string& path) {
  auto spool = line_spool::open(path);
  if (!spool)
    return spool.error();
  std::lock_guard<std::mutex> guard{impl_->backlog_mtx};
  std::size_t unreadable = 0;
  for (const auto& line : (*spool)->lines()) {
    auto s = from_spool_line(line);
    if (!s) {
      ++unreadable;
      continue;
    }
    impl_->backlog_bytes += s->body.size();
    impl_->backlog.push_back(std::move(*s));
  }
  // A line cut short by a kill is dropped now, or the next append would
  // be glued to it.
  std::vector<std::string> lines;
  for (const auto& s : impl_->backlog)
    lines.push_back(spool_line(s));
  if (auto err = (*spool)->rewrite(lines))
    return err;
  if (!impl_->backlog.empty() || unreadable > 0)
    spdlog::warn("submission log: {} submission(s) accepted before this node "
                 "stopped, while PostgreSQL was away, found in {} ({} "
                 "unreadable): written when PostgreSQL is reachable",
                 impl_->backlog.size(), path, unreadable);
  impl_->spool = std::move(*spool);
  return caf::none;
}

caf::expected<std::size_t> submission_log::flush_backlog() {
  return write_kept(impl_->sweep);
}

std::size_t submission_log::backlog() const {
  std::lock_guard<std::mutex> guard{impl_->backlog_mtx};
  return impl_->backlog.size();
}

caf::expected<std::vector<logged_submission>>
submission_log::unclaimed(std::int64_t min_age_ms, int limit) {
  return impl_->sweep.run("reading unclaimed submissions", [&](auto& c) {
    pqxx::nontransaction n{c};
    std::vector<logged_submission> out;
    for (const auto& row : n.exec_prepared("unclaimed", min_age_ms, limit))
      out.push_back({row[0].as<std::string>(), row[1].as<std::string>(),
                     row[2].as<std::string>(), row[3].as<std::string>(),
                     row[4].as<std::uint64_t>()});
    return out;
  });
}

caf::error submission_log::republished(const std::string& job_id,
                                       std::uint64_t seq) {
  auto r = impl_->sweep.run("noting a republished submission", [&](auto& c) {
    pqxx::nontransaction n{c};
    n.exec_prepared("republished", job_id, static_cast<std::int64_t>(seq));
    return true;
  });
  return r ? caf::none : r.error();
}

caf::expected<std::int64_t> submission_log::forget_claimed(int limit) {
  return impl_->sweep.run("forgetting claimed submissions", [&](auto& c) {
    pqxx::nontransaction n{c};
    return static_cast<std::int64_t>(
        n.exec_prepared("forget", limit).affected_rows());
  });
}

} // namespace troupe
