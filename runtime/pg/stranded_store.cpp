#include "runtime/pg/stranded_store.hpp"

#include "runtime/pg/lazy_connection.hpp"

namespace troupe {

namespace {

// An arbitrary constant naming the sweep lock ("troupe stranded").
constexpr long long sweep_lock_key = 0x7472737472616e64LL;

const char* const sql_standing = R"SQL(
select case
  when state in ('succeeded', 'dead_lettered', 'cancelled') then 'terminal'
  when run_at is not null or state = 'waiting' then 'in_store'
  when state in ('running', 'retrying', 'waiting')
    and (lease_until > now() or exists (select 1 from node_leases n
      where n.owner = jobs.lease_owner and n.until > now())) then 'held'
  else 'orphaned' end
from jobs where job_id = $1
)SQL";

const char* const sql_has_ended = R"SQL(
select exists (select 1 from jobs where job_id = $1 and pipeline = $2
  and state in ('succeeded', 'dead_lettered', 'cancelled'))
)SQL";

const char* const sql_long_queued = R"SQL(
select job_id, pipeline, stream_seq from jobs
where state = 'queued' and run_at is null and stream_seq is not null
  and updated_at < now() - $1::bigint * interval '1 millisecond'
order by updated_at
limit $2
)SQL";

const char* const sql_requeue = R"SQL(
update jobs set run_at = now(), updated_at = now()
where job_id = $1 and state = 'queued' and run_at is null and stream_seq = $2
)SQL";

job_standing standing_from(const std::string& s) {
  if (s == "terminal")
    return job_standing::terminal;
  if (s == "in_store")
    return job_standing::in_store;
  if (s == "held")
    return job_standing::held;
  return job_standing::orphaned;
}

} // namespace

struct stranded_store::impl {
  explicit impl(std::string url) : conn(std::move(url), [](auto&) {}) {}
  lazy_connection conn;
};

stranded_store::stranded_store(std::string pg_url)
    : impl_(std::make_unique<impl>(std::move(pg_url))) {}

stranded_store::~stranded_store() = default;

caf::expected<bool> stranded_store::try_lock() {
  return impl_->conn.run("taking the sweep lock", [](pqxx::connection& c) {
    pqxx::nontransaction n{c};
    return n.exec_params1("select pg_try_advisory_lock($1)", sweep_lock_key)[0]
        .as<bool>();
  });
}

void stranded_store::unlock() {
  (void)impl_->conn.run("releasing the sweep lock", [](pqxx::connection& c) {
    pqxx::nontransaction n{c};
    n.exec_params("select pg_advisory_unlock($1)", sweep_lock_key);
    return true;
  });
}

caf::expected<job_standing>
stranded_store::standing_of(const std::string& job_id) {
  return impl_->conn.run("reading a job's standing", [&](pqxx::connection& c) {
    pqxx::nontransaction n{c};
    auto r = n.exec_params(sql_standing, job_id);
    return r.empty() ? job_standing::absent
                     : standing_from(r[0][0].as<std::string>());
  });
}

caf::expected<bool> stranded_store::has_ended(const std::string& job_id,
                                              const std::string& pipeline) {
  return impl_->conn.run(
      "reading whether a job ended", [&](pqxx::connection& c) {
        pqxx::nontransaction n{c};
        return n.exec_params1(sql_has_ended, job_id, pipeline)[0].as<bool>();
      });
}

caf::expected<std::vector<stranded_store::queued_job>>
stranded_store::long_queued(std::int64_t min_age_ms, int limit) {
  return impl_->conn.run("reading long-queued jobs", [&](pqxx::connection& c) {
    pqxx::nontransaction n{c};
    std::vector<queued_job> out;
    for (const auto& row : n.exec_params(sql_long_queued, min_age_ms, limit))
      out.push_back({row[0].as<std::string>(), row[1].as<std::string>(),
                     row[2].as<std::uint64_t>()});
    return out;
  });
}

caf::expected<bool> stranded_store::requeue(const queued_job& j) {
  return impl_->conn.run("requeueing a job", [&](pqxx::connection& c) {
    pqxx::work w{c};
    auto r = w.exec_params(sql_requeue, j.job_id,
                           static_cast<std::int64_t>(j.stream_seq));
    if (r.affected_rows() > 0)
      w.exec("select pg_notify('troupe_due', '')");
    w.commit();
    return r.affected_rows() > 0;
  });
}

} // namespace troupe
