// The schedule verbs of admin_store (docs/scheduling.md).
#include "runtime/pg/admin_store_impl.hpp"
#include "runtime/pg/admin_store_rows.hpp"

#include <chrono>

namespace troupe {

namespace {

using json = nlohmann::json;

[[noreturn]] void unknown_schedule(const std::string& name) {
  throw admin_failure("unknown_schedule",
                      "unknown schedule '" + name + "' — try: schedules");
}

} // namespace

json admin_store::list_schedules() {
  return with_connection("listing schedules", [&](pqxx::connection& c) {
    pqxx::read_transaction t{c};
    json out = json::array();
    for (const auto& r : t.exec(R"SQL(
select s.name, s.cron, s.timezone, s.pipeline, s.paused, s.overlap,
  s.catch_up, (extract(epoch from s.next_at) * 1000)::bigint,
  (extract(epoch from s.last_at) * 1000)::bigint, coalesce(s.last_job, ''),
  coalesce(j.state, ''), s.node
from schedules s left join jobs j on j.job_id = s.last_job
order by s.name
)SQL"))
      out.push_back({{"name", r[0].c_str()},
                     {"cron", r[1].c_str()},
                     {"timezone", r[2].c_str()},
                     {"pipeline", r[3].c_str()},
                     {"paused", r[4].as<bool>()},
                     {"overlap", r[5].c_str()},
                     {"catch_up", r[6].c_str()},
                     {"next_at_ms", ms_or(r[7])},
                     {"last_at_ms", ms_or(r[8])},
                     {"last_job", r[9].c_str()},
                     {"last_job_state", r[10].c_str()},
                     {"registered_by", r[11].c_str()}});
    return out;
  });
}

json admin_store::set_schedule_paused(const std::string& name, bool paused) {
  return with_connection("pausing a schedule", [&](pqxx::connection& c) {
    pqxx::work w{c};
    // Resumed: it fires from its next slot, not for the time it was paused.
    auto r = w.exec_params(
        "update schedules set paused = $2, updated_at = now(), next_at = "
        "case when $2 then next_at end where name = $1",
        name, paused);
    if (r.affected_rows() == 0)
      unknown_schedule(name);
    w.commit();
    return json{{"name", name}, {"paused", paused}};
  });
}

json admin_store::delete_schedule(const std::string& name) {
  return with_connection("deleting a schedule", [&](pqxx::connection& c) {
    pqxx::work w{c};
    auto r = w.exec_params("delete from schedules where name = $1", name);
    if (r.affected_rows() == 0)
      unknown_schedule(name);
    w.commit();
    return json{{"name", name}, {"deleted", true}};
  });
}

json admin_store::trigger_schedule(const std::string& name) {
  return with_connection("triggering a schedule", [&](pqxx::connection& c) {
    pqxx::work w{c};
    auto s = w.exec_params(
        "select pipeline, coalesce(payload::text, 'null') from schedules "
        "where name = $1",
        name);
    if (s.empty())
      unknown_schedule(name);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    auto id = name + "@manual-" + std::to_string(ms);
    w.exec_params("insert into jobs (job_id, pipeline, state, payload, "
                  "run_at, epoch) values ($1, $2, 'scheduled', $3::jsonb, "
                  "now(), 0)",
                  id, s[0][0].c_str(), s[0][1].c_str());
    w.exec_params("update schedules set last_job = $2, updated_at = now() "
                  "where name = $1",
                  name, id);
    w.exec("select pg_notify('troupe_due', '')");
    w.commit();
    return json{{"name", name}, {"job_id", id}};
  });
}

} // namespace troupe
