#include "runtime/pg/retention.hpp"

#include <set>

#define PQXX_HAVE_OPTIONAL
#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "messages/admin_failure.hpp"
#include "runtime/pg/admin_store.hpp"

namespace troupe {

using json = nlohmann::json;

namespace {

constexpr long long prune_lock = 7243101;

// Jobs of pipeline $1 (or, with $1 = '', of every pipeline not in the JSON
// array $4) finished longer ago than $2 ms; at most $3 per statement. A
// child whose parent still runs or waits, and a job of a batch not yet
// complete, are kept: the join reads them (docs/workflows.md).
const char* sql_prune = R"SQL(
with victims as (
  select job_id from jobs
  where state in ('succeeded', 'cancelled')
    and finished_at < now() - $2::bigint * interval '1 millisecond'
    and (($1 <> '' and pipeline = $1) or
         ($1 = '' and pipeline not in (select jsonb_array_elements_text($4::jsonb))))
    and not (parent_id is not null and exists (select 1 from jobs p
               where p.job_id = jobs.parent_id and p.state not in
               ('succeeded', 'dead_lettered', 'cancelled')))
    and not (batch_id is not null and exists (select 1 from batches b
               where b.batch_id = jobs.batch_id and b.completed_at is null))
  order by finished_at
  limit $3
  for update skip locked),
events as (
  delete from job_events where job_id in (select job_id from victims))
delete from jobs where job_id in (select job_id from victims)
)SQL";

const char* sql_preview = R"SQL(
select count(*), (extract(epoch from min(finished_at)) * 1000)::bigint
from jobs
where state in ('succeeded', 'cancelled')
  and finished_at < now() - $2::bigint * interval '1 millisecond'
  and (($1 <> '' and pipeline = $1) or
       ($1 = '' and pipeline not in (select jsonb_array_elements_text($3::jsonb))))
  and not (parent_id is not null and exists (select 1 from jobs p
             where p.job_id = jobs.parent_id and p.state not in
             ('succeeded', 'dead_lettered', 'cancelled')))
  and not (batch_id is not null and exists (select 1 from batches b
             where b.batch_id = jobs.batch_id and b.completed_at is null))
)SQL";

} // namespace

retention_pruner::retention_pruner(const troupe_config& cfg)
    : cfg_(cfg), url_(with_connect_timeout(cfg.postgres.url)) {}

retention_pruner::~retention_pruner() {
  stop();
}

// Each pipeline's retention is the one written by the nodes that run it
// (pipeline_retention, refreshed at every start): a node prunes pipelines
// it does not run by their own policy, not by its default. Only jobs of
// pipelines no node ever registered fall to this node's default.
std::vector<retention_pruner::policy>
retention_pruner::policies(pqxx::connection_base& c) const {
  std::vector<policy> out;
  std::set<std::string> named;
  for (auto& [name, p] : cfg_.pipelines) {
    out.push_back(
        {name, (p.retention ? *p.retention : cfg_.retention.finished).count()});
    named.insert(name);
  }
  pqxx::nontransaction n{c};
  for (const auto& row :
       n.exec("select pipeline, keep_ms from pipeline_retention"))
    if (named.insert(row[0].as<std::string>()).second)
      out.push_back({row[0].as<std::string>(), row[1].as<std::int64_t>()});
  out.push_back({"", cfg_.retention.finished.count()});
  return out;
}

/// The pipelines with a policy of their own (the others fall to "").
static std::string
named_pipelines(const std::vector<retention_pruner::policy>& ps) {
  json out = json::array();
  for (auto& p : ps)
    if (!p.pipeline.empty())
      out.push_back(p.pipeline);
  return out.dump();
}

void retention_pruner::register_policies() {
  try {
    pqxx::connection c{url_};
    pqxx::work w{c};
    for (auto& [name, p] : cfg_.pipelines)
      w.exec_params(
          "insert into pipeline_retention (pipeline, keep_ms, node) "
          "values ($1, $2, $3) on conflict (pipeline) do update set "
          "keep_ms = excluded.keep_ms, node = excluded.node, "
          "updated_at = now()",
          name, (p.retention ? *p.retention : cfg_.retention.finished).count(),
          cfg_.node.id);
    w.commit();
  } catch (const std::exception& e) {
    spdlog::warn("retention: cannot record this node's policies: {}", e.what());
  }
}

std::int64_t retention_pruner::run_once(int max_batches) {
  std::lock_guard<std::mutex> guard{db_mtx_};
  try {
    pqxx::connection c{url_};
    {
      pqxx::nontransaction n{c};
      if (!n.exec1("select pg_try_advisory_lock(" + std::to_string(prune_lock) +
                   ")")[0]
               .as<bool>())
        return -1;
    }
    std::int64_t pruned = 0;
    auto pols = policies(c);
    auto configured = named_pipelines(pols);
    for (auto& pol : pols) {
      if (pol.keep_ms <= 0)
        continue; // keep forever
      for (int b = 0; b < max_batches; ++b) {
        pqxx::work w{c};
        auto r = w.exec_params(sql_prune, pol.pipeline, pol.keep_ms,
                               cfg_.retention.batch, configured);
        w.commit();
        auto k = static_cast<std::int64_t>(r.affected_rows());
        pruned += k;
        if (k < cfg_.retention.batch)
          break;
      }
    }
    {
      pqxx::nontransaction n{c};
      n.exec("select pg_advisory_unlock(" + std::to_string(prune_lock) + ")");
    }
    pruned_total_ += pruned;
    return pruned;
  } catch (const pqxx::broken_connection& e) {
    throw admin_failure("unavailable",
                        std::string{"PostgreSQL is unreachable: "} + e.what());
  } catch (const std::exception& e) {
    throw admin_failure("store_error", std::string{"pruning: "} + e.what());
  }
}

json retention_pruner::preview() {
  std::lock_guard<std::mutex> guard{db_mtx_};
  try {
    pqxx::connection c{url_};
    auto pols = policies(c);
    auto configured = named_pipelines(pols);
    pqxx::read_transaction t{c};
    json out{{"policies", json::array()}};
    for (auto& pol : pols) {
      json e{{"pipeline", pol.pipeline.empty() ? "*" : pol.pipeline},
             {"keep_ms", pol.keep_ms},
             {"due", 0},
             {"oldest_finished_ms", nullptr}};
      if (pol.keep_ms > 0) {
        auto r =
            t.exec_params1(sql_preview, pol.pipeline, pol.keep_ms, configured);
        e["due"] = r[0].as<std::int64_t>();
        if (!r[1].is_null())
          e["oldest_finished_ms"] = r[1].as<std::int64_t>();
      }
      out["policies"].push_back(std::move(e));
    }
    out["dead_letters_kept"] =
        t.exec1("select count(*) from jobs where state = 'dead_lettered'")[0]
            .as<std::int64_t>();
    out["batch"] = cfg_.retention.batch;
    out["interval_ms"] = cfg_.retention.interval.count();
    return out;
  } catch (const pqxx::broken_connection& e) {
    throw admin_failure("unavailable",
                        std::string{"PostgreSQL is unreachable: "} + e.what());
  } catch (const std::exception& e) {
    throw admin_failure("store_error", std::string{"retention: "} + e.what());
  }
}

void retention_pruner::start() {
  thread_ = std::thread{[this] {
    register_policies();
    std::unique_lock<std::mutex> lock{mtx_};
    while (!stopping_) {
      if (cv_.wait_for(lock, cfg_.retention.interval,
                       [this] { return stopping_; }))
        break;
      lock.unlock();
      try {
        auto n = run_once();
        if (n > 0)
          spdlog::info("retention: pruned {} finished job(s)", n);
      } catch (const std::exception& e) {
        spdlog::warn("retention: {}", e.what());
      }
      lock.lock();
    }
  }};
}

void retention_pruner::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

} // namespace troupe
