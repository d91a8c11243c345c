#include "runtime/pg/job_presence.hpp"
#include "runtime/pg/pg_url.hpp"

#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "messages/json_text.hpp"
#include "runtime/common/redact.hpp"

namespace troupe {

struct job_presence::connection {
  explicit connection(const std::string& url) : c(with_connect_timeout(url)) {
    // The generic plan of `present` (kept for the connection's life after
    // five executions) was a sequential scan of jobs chosen while the table
    // was small: 118 ms per fetched batch in a benchmark, most of
    // PostgreSQL's time. Planning each execution instead cost 0.06-0.07 ms
    // per read, on the serial path of every submission (the API's read and
    // the intake's). Both statements look rows up by primary key: with
    // sequential scans ruled out, the generic plan is that lookup whatever
    // the table's size when it was made.
    pqxx::nontransaction{c}.exec("set enable_seqscan = off");
    c.prepare("present",
              "select job_id from jobs where job_id = "
              "any(array(select json_array_elements_text($1::json)))");
    c.prepare("pipeline", "select pipeline from jobs where job_id = $1");
  }
  pqxx::connection c;
};

job_presence::job_presence(std::string pg_url) : url_(std::move(pg_url)) {}

job_presence::~job_presence() = default;

std::optional<std::unordered_set<std::string>>
job_presence::existing(const std::vector<std::string>& job_ids) {
  std::unordered_set<std::string> out;
  if (job_ids.empty())
    return out;
  json_array_writer ids;
  for (const auto& id : job_ids)
    ids.str(id);
  std::lock_guard<std::mutex> guard{mtx_};
  try {
    if (!conn_)
      conn_ = std::make_unique<connection>(url_);
    pqxx::nontransaction t{conn_->c};
    for (const auto& row : t.exec_prepared("present", ids.done()))
      out.insert(row[0].as<std::string>());
    return out;
  } catch (const std::exception& e) {
    // Not fatal: these jobs claim first, as they did before speculation.
    conn_.reset();
    spdlog::debug("intake: job presence check failed ({}): {}",
                  redact_url(url_), redact_text(e.what(), url_));
    return std::nullopt;
  }
}

std::optional<std::string>
job_presence::pipeline_of(const std::string& job_id) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (std::chrono::steady_clock::now() < down_until_)
    return std::nullopt;
  try {
    if (!conn_)
      conn_ = std::make_unique<connection>(url_);
    pqxx::nontransaction t{conn_->c};
    auto r = t.exec_prepared("pipeline", job_id);
    return r.empty() ? std::string{} : r[0][0].as<std::string>();
  } catch (const std::exception& e) {
    conn_.reset();
    down_until_ = std::chrono::steady_clock::now() + std::chrono::seconds{5};
    spdlog::debug("job lookup failed ({}): {}", redact_url(url_),
                  redact_text(e.what(), url_));
    return std::nullopt;
  }
}

} // namespace troupe
