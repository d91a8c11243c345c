#include "runtime/pg/stranded_store.hpp"

#include "runtime/pg/lazy_connection.hpp"

namespace troupe {

namespace {

// An arbitrary constant naming the sweep lock ("troupe stranded").
constexpr long long sweep_lock_key = 0x7472737472616e64LL;

const char* const sql_standing = R"SQL(
select case
  when state in ('succeeded', 'dead_lettered', 'cancelled') then 'terminal'
  when run_at is not null then 'in_store'
  when state in ('running', 'retrying', 'waiting')
    and lease_until > now() then 'held'
  else 'orphaned' end
from jobs where job_id = $1
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

} // namespace troupe
