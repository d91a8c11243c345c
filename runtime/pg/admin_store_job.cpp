// The `job` verb's answer, read in one transaction (runtime/pg/admin_store.cpp
// opens it).
#include "runtime/pg/admin_store_rows.hpp"

#include <map>

#include "messages/admin_failure.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

/// A parent's children (docs/workflows.md): the wait's record if it waits,
/// and how many children are in each state; null for a job without any.
json family_of(const pqxx::field& wait, const pqxx::field& states) {
  if (wait.is_null() && states.is_null())
    return nullptr;
  json out{{"waiting", wait.is_null() ? json{} : json::parse(wait.c_str())},
           {"states",
            states.is_null() ? json::object() : json::parse(states.c_str())}};
  std::int64_t total = 0;
  for (auto& [state, n] : out["states"].items())
    total += n.get<std::int64_t>();
  out["total"] = total;
  return out;
}

json job_row(pqxx::read_transaction& t, const std::string& job_id,
             std::size_t max, bool* cut) {
  auto jr = t.exec_params(
      R"SQL(
select job_id, pipeline, tenant, correlation_id, priority, state,
  stage_index, attempt, epoch, life, start_stage,
  -- The node, without its process's incarnation ('<id>#<hex>'); the lease
  -- is the node's (node_leases) unless an older node gave the job its own.
  regexp_replace(coalesce(lease_owner, ''), '#[^#]*$', ''),
  (extract(epoch from case when state in ('running', 'retrying')
    and run_at is null then coalesce(lease_until, (select n.until
      from node_leases n where n.owner = jobs.lease_owner)) end) * 1000)::bigint,
  payload::text,
  result::text, coalesce(last_error, ''),
  (extract(epoch from created_at) * 1000)::bigint,
  (extract(epoch from started_at) * 1000)::bigint,
  (extract(epoch from finished_at) * 1000)::bigint,
  (extract(epoch from next_attempt_at) * 1000)::bigint,
  (extract(epoch from updated_at) * 1000)::bigint,
  (extract(epoch from run_at) * 1000)::bigint, gen, progress::text,
  parent_id, children::text,
  (select jsonb_object_agg(state, n)::text from (select c.state, count(*) n
    from jobs c where c.parent_id = jobs.job_id group by c.state) s)
from jobs where job_id = $1
)SQL",
      job_id);
  if (jr.empty())
    throw admin_failure("unknown_job", "unknown job '" + job_id +
                                           "' — try: jobs --state "
                                           "dead_lettered");
  const auto& r = jr[0];
  return json{{"job_id", r[0].c_str()},
              {"pipeline", r[1].c_str()},
              {"tenant", r[2].c_str()},
              {"correlation_id", r[3].c_str()},
              {"priority", r[4].as<int>()},
              {"state", r[5].c_str()},
              {"stage_index", r[6].as<int>()},
              {"attempt", r[7].as<int>()},
              {"epoch", r[8].as<std::int64_t>()},
              {"life", r[9].as<int>()},
              {"start_stage", r[10].as<int>()},
              {"lease_owner", r[11].c_str()},
              {"lease_until_ms", ms_or(r[12])},
              {"payload", value_of(r[13], max, cut)},
              {"result", value_of(r[14], max, cut)},
              {"last_error", r[15].c_str()},
              {"created_at_ms", ms_or(r[16])},
              {"started_at_ms", ms_or(r[17])},
              {"finished_at_ms", ms_or(r[18])},
              {"next_attempt_at_ms", ms_or(r[19])},
              {"updated_at_ms", ms_or(r[20])},
              {"run_at_ms", ms_or(r[21])},
              {"gen", r[22].as<int>()},
              {"progress", value_of(r[23], max, cut)},
              {"parent_id",
               r[24].is_null() ? json{} : json(std::string{r[24].c_str()})},
              {"children", family_of(r[25], r[26])}};
}

/// Every stage that has a checkpoint or an attempt, by index.
class stage_history {
public:
  json& entry(int index, const std::string& name) {
    auto& s = stages_[index];
    if (s.is_null())
      s = json{{"index", index},
               {"name", name},
               {"attempts", json::array()},
               {"checkpoint", nullptr}};
    return s;
  }

  json list() {
    json out = json::array();
    for (auto& kv : stages_)
      out.push_back(std::move(kv.second));
    return out;
  }

private:
  std::map<int, json> stages_;
};

json attempt_json(const pqxx::row& a, std::size_t max, bool* cut) {
  json rec{
      {"life", a[0].as<int>()},       {"attempt", a[2].as<int>()},
      {"node", a[4].c_str()},         {"ok", a[5].as<bool>()},
      {"started_at_ms", ms_or(a[8])}, {"duration_ms", a[9].as<std::int64_t>()}};
  if (!a[5].as<bool>()) {
    std::string msg = a[7].c_str();
    if (max > 0 && msg.size() > max) {
      msg = msg.substr(0, max) + "…";
      *cut = true;
    }
    rec["error"] = json{{"code", a[6].c_str()}, {"message", msg}};
  }
  return rec;
}

json stages_of(pqxx::read_transaction& t, const std::string& job_id,
               std::size_t max, bool* cut) {
  stage_history stages;
  for (const auto& a : t.exec_params(R"SQL(
select life, stage_index, attempt, stage, node, ok, coalesce(error_code, ''),
  coalesce(error_message, ''),
  (extract(epoch from started_at) * 1000)::bigint, duration_ms
from job_attempts where job_id = $1
order by stage_index, life, attempt
)SQL",
                                     job_id))
    stages.entry(a[1].as<int>(), a[3].c_str())["attempts"].push_back(
        attempt_json(a, max, cut));
  for (const auto& cp : t.exec_params(R"SQL(
select stage_index, stage, output::text, attempts, duration_ms,
  (extract(epoch from finished_at) * 1000)::bigint
from stage_checkpoints where job_id = $1 order by stage_index
)SQL",
                                      job_id))
    stages.entry(cp[0].as<int>(), cp[1].c_str())["checkpoint"] =
        json{{"output", value_of(cp[2], max, cut)},
             {"attempts", cp[3].as<int>()},
             {"duration_ms", cp[4].as<std::int64_t>()},
             {"finished_at_ms", ms_or(cp[5])}};
  return stages.list();
}

json events_of(pqxx::read_transaction& t, const std::string& job_id) {
  json events = json::array();
  for (const auto& e : t.exec_params(R"SQL(
select body::text from (
  select id, body from job_events where job_id = $1 order by id desc limit 500
) e order by id
)SQL",
                                     job_id))
    events.push_back(json::parse(e[0].c_str(), nullptr, false));
  return events;
}

json dead_letter_of(pqxx::read_transaction& t, const std::string& job_id) {
  auto dr = t.exec_params(R"SQL(
select failed_stage, coalesce(stage, ''), coalesce(last_error, ''),
  (extract(epoch from dead_at) * 1000)::bigint, replay_count,
  (extract(epoch from replayed_at) * 1000)::bigint
from dead_letters where job_id = $1
)SQL",
                          job_id);
  if (dr.empty())
    return nullptr;
  const auto& d = dr[0];
  return json{{"failed_stage", d[0].is_null() ? -1 : d[0].as<int>()},
              {"stage", d[1].c_str()},
              {"last_error", d[2].c_str()},
              {"dead_at_ms", ms_or(d[3])},
              {"replay_count", d[4].as<int>()},
              {"replayed_at_ms", ms_or(d[5])}};
}

} // namespace

json read_job(pqxx::read_transaction& t, const std::string& job_id,
              std::size_t max) {
  bool cut = false;
  auto job = job_row(t, job_id, max, &cut);
  auto stages = stages_of(t, job_id, max, &cut);
  return json{{"job", std::move(job)},
              {"stages", std::move(stages)},
              {"events", events_of(t, job_id)},
              {"dead_letter", dead_letter_of(t, job_id)},
              {"truncated", cut}};
}

} // namespace troupe
