#include "runtime/pg/batch_store.hpp"

#include <set>

#define PQXX_HAVE_OPTIONAL
#include <pqxx/pqxx>

#include "runtime/pg/lazy_connection.hpp"

#include "messages/json_text.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

constexpr const char* sql_batch = R"SQL(
insert into batches (batch_id, tenant, total, on_complete, on_success, node)
values ($1, $2, $3, $4::jsonb, $5::jsonb, $6)
on conflict (batch_id) do nothing
returning batch_id
)SQL";

// Every job of the batch, due now. A job id that exists already is not
// inserted (and the batch is rolled back: see create).
constexpr const char* sql_jobs = R"SQL(
insert into jobs (job_id, pipeline, tenant, correlation_id, priority, state,
  payload, run_at, epoch, batch_id)
select x.job_id, x.pipeline, $2, coalesce(x.correlation_id, ''),
  coalesce(x.priority, 0), 'scheduled', x.payload::jsonb, now(), 0, $3
from jsonb_to_recordset($1::jsonb) as x(job_id text, pipeline text,
  payload text, priority int, correlation_id text)
on conflict (job_id) do nothing
returning job_id
)SQL";

constexpr const char* sql_status = R"SQL(
select b.total, b.succeeded, b.failed,
  (extract(epoch from b.created_at) * 1000)::bigint,
  (extract(epoch from b.completed_at) * 1000)::bigint,
  coalesce((select jsonb_object_agg(state, n) from (select state, count(*) n
    from jobs where batch_id = b.batch_id group by state) s), '{}')::text,
  coalesce((select jsonb_object_agg(split_part(job_id, '/', -1),
      jsonb_build_object('job_id', job_id, 'state', state))
    from jobs where job_id in (b.batch_id || '/on_complete',
                               b.batch_id || '/on_success')), '{}')::text,
  b.tenant
from batches b where b.batch_id = $1 and ($2::text is null or b.tenant = $2)
)SQL";

std::string job_records(const batch_spec& spec) {
  json_array_writer out;
  for (const auto& j : spec.jobs) {
    auto o = out.object();
    o.str("job_id", j.job_id)
        .str("pipeline", j.pipeline)
        .str("payload", j.payload)
        .num("priority", j.priority)
        .str("correlation_id", j.correlation_id);
    o.close();
  }
  return out.done();
}

std::optional<std::string> json_or_null(const json& j) {
  if (j.is_null())
    return std::nullopt;
  return j.dump();
}

json nullable_int(const pqxx::field& f) {
  return f.is_null() ? json(nullptr) : json(f.as<std::int64_t>());
}

} // namespace

batch_store::batch_store(std::string pg_url)
    : conn_(std::make_unique<lazy_connection>(
          std::move(pg_url), [](pqxx::connection& c) {
            c.prepare("batch", sql_batch);
            c.prepare("batch_jobs", sql_jobs);
            c.prepare("batch_status", sql_status);
          })) {}

batch_store::~batch_store() = default;

caf::expected<batch_created> batch_store::create(const batch_spec& spec) {
  std::lock_guard<std::mutex> guard{mtx_};
  return conn_->run("creating a batch", [&](pqxx::connection& c) {
    pqxx::work w{c};
    batch_created out;
    auto b = w.exec_prepared("batch", spec.batch_id, spec.tenant,
                             static_cast<int>(spec.jobs.size()),
                             json_or_null(spec.on_complete),
                             json_or_null(spec.on_success), spec.node);
    if (b.empty()) {
      out.created = false;
      return out; // the same batch again: nothing to do
    }
    auto rows = w.exec_prepared("batch_jobs", job_records(spec), spec.tenant,
                                spec.batch_id);
    if (rows.size() != spec.jobs.size()) {
      // A key names an existing job: the batch would not be whole.
      std::set<std::string> made;
      for (const auto& r : rows)
        made.insert(r[0].c_str());
      for (const auto& j : spec.jobs)
        if (!made.count(j.job_id)) {
          out.conflict = j.job_id;
          break;
        }
      w.abort();
      return out;
    }
    w.exec("select pg_notify('troupe_due', '')");
    w.commit();
    return out;
  });
}

caf::expected<std::optional<json>>
batch_store::status(const std::string& batch_id, const std::string* tenant) {
  std::lock_guard<std::mutex> guard{mtx_};
  return conn_->run("reading a batch", [&](pqxx::connection& c) {
    pqxx::read_transaction t{c};
    auto rows = t.exec_prepared("batch_status", batch_id,
                                tenant ? std::optional<std::string>{*tenant}
                                       : std::nullopt);
    if (rows.empty())
      return std::optional<json>{};
    const auto& r = rows[0];
    return std::optional<json>{json{{"batch_id", batch_id},
                                    {"total", r[0].as<std::int64_t>()},
                                    {"succeeded", nullable_int(r[1])},
                                    {"failed", nullable_int(r[2])},
                                    {"created_at_ms", nullable_int(r[3])},
                                    {"completed_at_ms", nullable_int(r[4])},
                                    {"states", json::parse(r[5].c_str())},
                                    {"callbacks", json::parse(r[6].c_str())},
                                    {"tenant", r[7].c_str()}}};
  });
}

} // namespace troupe
