#include "runtime/pg/status_store.hpp"

#include "messages/json_text.hpp"
#include "runtime/pg/admin_store_rows.hpp"
#include "runtime/pg/lazy_connection.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

/// Largest result or progress a status reply carries whole (bytes): a
/// reply must fit in a NATS message (1 MiB by default); a larger value
/// comes as a preview (the admin `job --full` has it whole).
constexpr std::size_t max_reply_value = 512 * 1024;

constexpr const char* sql_status = R"SQL(
select j.job_id, j.pipeline, j.tenant, j.state, j.stage_index, j.attempt,
  j.life, j.result::text, coalesce(j.last_error, ''), j.correlation_id,
  case when (j.progress->>'stage_index')::int = j.stage_index
    then j.progress::text end,
  (extract(epoch from j.created_at) * 1000)::bigint,
  (extract(epoch from j.started_at) * 1000)::bigint,
  (extract(epoch from j.finished_at) * 1000)::bigint,
  (extract(epoch from j.run_at) * 1000)::bigint,
  (extract(epoch from j.next_attempt_at) * 1000)::bigint,
  (extract(epoch from j.updated_at) * 1000)::bigint,
  a.total, a.failed,
  coalesce(a.stage, (select c.stage from stage_checkpoints c
    where c.job_id = j.job_id and c.stage_index = j.stage_index), ''),
  j.parent_id,
  (select jsonb_object_agg(state, n)::text from (select k.state, count(*) n
    from jobs k where k.parent_id = j.job_id group by k.state) s)
from jobs j
left join lateral (
  select count(*) as total, count(*) filter (where not ok) as failed,
    (array_agg(stage order by life desc) filter (
       where stage_index = j.stage_index))[1] as stage
  from job_attempts where job_id = j.job_id) a on true
where j.job_id = $1
)SQL";

constexpr const char* sql_states = R"SQL(
select job_id, state, tenant from jobs
where job_id = any(array(select jsonb_array_elements_text($1::jsonb)))
)SQL";

json nullable_ms(const pqxx::field& f) {
  return f.is_null() ? json(nullptr) : json(f.as<std::int64_t>());
}

/// `last_error` is `code: message` (or a bare code such as `cancelled`).
json error_of(const std::string& state, const std::string& last_error) {
  if (state == "succeeded" || last_error.empty())
    return nullptr;
  auto at = last_error.find(": ");
  if (at == std::string::npos)
    return json{{"code", last_error}, {"message", last_error}};
  return json{{"code", last_error.substr(0, at)},
              {"message", last_error.substr(at + 2)}};
}

job_status status_of(const pqxx::row& r) {
  job_status out;
  out.tenant = r[2].c_str();
  out.state = r[3].c_str();
  bool cut = false;
  out.doc = json{
      {"job_id", r[0].c_str()},
      {"pipeline", r[1].c_str()},
      {"tenant", out.tenant},
      {"state", out.state},
      {"stage_index", r[4].as<int>()},
      {"stage", r[19].c_str()},
      {"life", r[6].as<int>()},
      {"attempts",
       {{"total", r[17].as<std::int64_t>()},
        {"failed", r[18].as<std::int64_t>()},
        {"stage_attempt", r[5].as<int>()}}},
      {"result", out.state == "succeeded"
                     ? value_of(r[7], max_reply_value, &cut)
                     : json(nullptr)},
      {"error", error_of(out.state, r[8].c_str())},
      {"correlation_id", r[9].c_str()},
      {"progress", value_of(r[10], max_reply_value, &cut)},
      {"created_at_ms", nullable_ms(r[11])},
      {"started_at_ms", nullable_ms(r[12])},
      {"finished_at_ms", nullable_ms(r[13])},
      {"run_at_ms", nullable_ms(r[14])},
      {"next_attempt_at_ms", nullable_ms(r[15])},
      {"updated_at_ms", nullable_ms(r[16])},
  };
  // Child jobs (docs/workflows.md): a child names its parent; a parent
  // counts its children by state.
  if (!r[20].is_null())
    out.doc["parent_id"] = r[20].c_str();
  if (!r[21].is_null())
    out.doc["children"] = json::parse(r[21].c_str());
  return out;
}

} // namespace

status_store::status_store(std::string pg_url)
    : conn_(std::make_unique<lazy_connection>(std::move(pg_url),
                                              [](pqxx::connection& c) {
                                                c.prepare("status", sql_status);
                                                c.prepare("states", sql_states);
                                              })) {}

status_store::~status_store() = default;

caf::expected<std::optional<job_status>>
status_store::status(const std::string& job_id) {
  std::lock_guard<std::mutex> guard{mtx_};
  return conn_->run("reading a job's status", [&](pqxx::connection& c) {
    pqxx::read_transaction t{c};
    auto rows = t.exec_prepared("status", job_id);
    return rows.empty() ? std::optional<job_status>{}
                        : std::optional<job_status>{status_of(rows[0])};
  });
}

caf::expected<std::map<std::string, std::pair<std::string, std::string>>>
status_store::states(const std::vector<std::string>& job_ids) {
  json_array_writer ids;
  for (const auto& id : job_ids)
    ids.str(id);
  auto text = ids.done();
  std::lock_guard<std::mutex> guard{mtx_};
  return conn_->run("reading job states", [&](pqxx::connection& c) {
    std::map<std::string, std::pair<std::string, std::string>> out;
    pqxx::nontransaction t{c};
    for (const auto& row : t.exec_prepared("states", text))
      out.emplace(row[0].c_str(), std::pair{std::string{row[1].c_str()},
                                            std::string{row[2].c_str()}});
    return out;
  });
}

} // namespace troupe
