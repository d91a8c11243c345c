#include "runtime/pg/callback_store.hpp"
#include "runtime/pg/lazy_connection.hpp"
#include "runtime/pg/token_hash.hpp"

namespace troupe {

namespace {

// The row, locked: is it this token's wait (by its hash: the token never
// reaches PostgreSQL), and was it completed already?
constexpr const char* sql_find = R"SQL(
select state, tenant, coalesce(callback->>'hash' = $2, false),
  coalesce(callback ? 'completed_ms', false)
from jobs where job_id = $1
for update
)SQL";

// Due now: the scheduler publishes it, and the node that claims it finds
// the completion in the callback record.
constexpr const char* sql_complete = R"SQL(
update jobs set
  callback = callback || jsonb_build_object('completion', $2::jsonb,
    'completed_ms', (extract(epoch from now()) * 1000)::bigint),
  run_at = now(), updated_at = now()
where job_id = $1 and state = 'waiting'
)SQL";

} // namespace

callback_store::callback_store(std::string pg_url)
    : conn_(std::make_unique<lazy_connection>(
          std::move(pg_url), [](pqxx::connection& c) {
            c.prepare("find", sql_find);
            c.prepare("complete", sql_complete);
          })) {}

callback_store::~callback_store() = default;

caf::expected<completion_result>
callback_store::complete(const std::string& job_id, const std::string& token,
                         const std::string& completion,
                         const std::string* tenant) {
  std::lock_guard<std::mutex> guard{mtx_};
  return conn_->run("completing a callback", [&](pqxx::connection& c) {
    pqxx::work w{c};
    auto rows = w.exec_prepared("find", job_id, token_hash(token));
    if (rows.empty() || !rows[0][2].as<bool>() ||
        (tenant && *tenant != rows[0][1].c_str()))
      return completion_result::not_found;
    if (rows[0][3].as<bool>())
      return completion_result::duplicate;
    if (std::string{rows[0][0].c_str()} != "waiting")
      return completion_result::too_late;
    w.exec_prepared("complete", job_id, completion);
    w.exec("select pg_notify('troupe_due', '')");
    w.commit();
    return completion_result::completed;
  });
}

} // namespace troupe
