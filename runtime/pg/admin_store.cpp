#include "runtime/pg/admin_store.hpp"
#include "messages/event_type.hpp"

#define PQXX_HAVE_OPTIONAL
#include <pqxx/pqxx>

#include <chrono>
#include <map>

#include "messages/admin_failure.hpp"
#include "messages/job.hpp"
#include "runtime/pg/admin_store_impl.hpp"
#include "runtime/pg/admin_store_rows.hpp"
#include "runtime/pg/admin_store_sql.hpp"

namespace troupe {

using json = nlohmann::json;

admin_store::admin_store(std::string pg_url)
    : url_(with_connect_timeout(std::move(pg_url))) {}

admin_store::~admin_store() = default;

json admin_store::list_jobs(const job_filter& f) {
  if (!f.state.empty()) {
    job_state s;
    if (!from_string(f.state, s))
      throw admin_failure("invalid_request",
                          "unknown state '" + f.state +
                              "' (scheduled, queued, running, retrying, "
                              "waiting, succeeded, dead_lettered, "
                              "cancelled)");
  }
  int limit = std::max(1, std::min(f.limit, 1000));
  return with_connection("listing jobs", [&](pqxx::connection& c) {
    pqxx::read_transaction t{c};
    auto rows = t.exec_params(
        R"SQL(
select job_id, pipeline, tenant, state, stage_index, attempt, life,
  coalesce(last_error, ''),
  (extract(epoch from created_at) * 1000)::bigint,
  (extract(epoch from updated_at) * 1000)::bigint,
  (extract(epoch from finished_at) * 1000)::bigint,
  (extract(epoch from next_attempt_at) * 1000)::bigint,
  correlation_id, (extract(epoch from run_at) * 1000)::bigint,
  case when state = 'running'
    and (progress->>'stage_index')::int = stage_index
    and jsonb_typeof(progress->'progress') = 'number'
    then (progress->>'progress')::float8 end
from jobs
where ($1 = '' or pipeline = $1) and ($2 = '' or state = $2)
  and ($3 = '' or tenant = $3)
  and created_at >= to_timestamp($4::bigint / 1000.0)
  and ($5 = '' or (created_at, job_id) <
       (select created_at, job_id from jobs where job_id = $5))
  and ($7 = '' or parent_id = $7) and ($8 = '' or batch_id = $8)
  and ($9 = '' or split_part(coalesce(last_error, ''), ':', 1) = $9)
  and ($10 = '' or strpos(job_id, $10) > 0 or strpos(correlation_id, $10) > 0)
order by created_at desc, job_id desc
limit $6
)SQL",
        f.pipeline, f.state, f.tenant, f.since_ms, f.after, limit + 1, f.parent,
        f.batch, f.error_code, f.text);
    json out{{"jobs", json::array()}, {"next", nullptr}};
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& r = rows[i];
      if (static_cast<int>(i) == limit) {
        out["next"] = out["jobs"].back()["job_id"];
        break;
      }
      out["jobs"].push_back(
          {{"job_id", r[0].c_str()},
           {"pipeline", r[1].c_str()},
           {"tenant", r[2].c_str()},
           {"state", r[3].c_str()},
           {"stage_index", r[4].as<int>()},
           {"attempt", r[5].as<int>()},
           {"life", r[6].as<int>()},
           {"last_error", r[7].c_str()},
           {"created_at_ms", ms_or(r[8])},
           {"updated_at_ms", ms_or(r[9])},
           {"finished_at_ms", ms_or(r[10])},
           {"next_attempt_at_ms", ms_or(r[11])},
           {"correlation_id", r[12].c_str()},
           {"run_at_ms", ms_or(r[13])},
           {"progress",
            r[14].is_null() ? json(nullptr) : json(r[14].as<double>())}});
    }
    return out;
  });
}

json admin_store::get_job(const std::string& job_id, bool full,
                          std::size_t max_value_bytes) {
  std::size_t max = full ? 0 : max_value_bytes;
  return with_connection("reading job", [&](pqxx::connection& c) {
    pqxx::read_transaction t{c};
    return read_job(t, job_id, max);
  });
}

json admin_store::list_dead_letters(const std::string& pipeline, int limit) {
  limit = std::max(1, std::min(limit, 1000));
  return with_connection("listing dead letters", [&](pqxx::connection& c) {
    pqxx::read_transaction t{c};
    auto rows = t.exec_params(
        R"SQL(
select d.job_id, d.pipeline, coalesce(d.failed_stage, -1),
  coalesce(d.stage, ''), coalesce(d.last_error, ''),
  (extract(epoch from d.dead_at) * 1000)::bigint, d.replay_count,
  jsonb_array_length(d.attempts), j.tenant, j.life
from dead_letters d join jobs j using (job_id)
where ($1 = '' or d.pipeline = $1) and j.state = 'dead_lettered'
order by d.dead_at desc, d.job_id desc
limit $2
)SQL",
        pipeline, limit);
    json out = json::array();
    for (const auto& r : rows)
      out.push_back({{"job_id", r[0].c_str()},
                     {"pipeline", r[1].c_str()},
                     {"failed_stage", r[2].as<int>()},
                     {"stage", r[3].c_str()},
                     {"last_error", r[4].c_str()},
                     {"dead_at_ms", ms_or(r[5])},
                     {"replay_count", r[6].as<int>()},
                     {"attempts", r[7].as<int>()},
                     {"tenant", r[8].c_str()},
                     {"life", r[9].as<int>()}});
    return out;
  });
}

std::vector<std::string>
admin_store::dead_letter_ids(const std::string& pipeline, int limit) {
  return with_connection("listing dead letters", [&](pqxx::connection& c) {
    pqxx::read_transaction t{c};
    auto rows = t.exec_params(
        "select d.job_id from dead_letters d join jobs j using (job_id) "
        "where ($1 = '' or d.pipeline = $1) and j.state = 'dead_lettered' "
        "order by d.dead_at limit $2",
        pipeline, limit);
    std::vector<std::string> out;
    for (const auto& r : rows)
      out.emplace_back(r[0].c_str());
    return out;
  });
}

std::vector<std::string> admin_store::stage_names(const std::string& job_id) {
  return with_connection("reading stage names", [&](pqxx::connection& c) {
    pqxx::read_transaction t{c};
    auto rows = t.exec_params(
        "select stage_index, stage from job_attempts where job_id = $1 "
        "union select stage_index, stage from stage_checkpoints "
        "where job_id = $1 order by 1",
        job_id);
    std::vector<std::string> out;
    for (const auto& r : rows) {
      auto i = static_cast<std::size_t>(r[0].as<int>());
      if (out.size() <= i)
        out.resize(i + 1);
      out[i] = r[1].c_str();
    }
    return out;
  });
}

namespace {

/// A new life starts again at `from`: the checkpoints from there on go, and
/// the attempts they hold (runtime/pg/attempt_fold.hpp) stay in the history.
void drop_checkpoints_from(pqxx::work& w, const std::string& job_id,
                           std::int32_t from) {
  w.exec_params(R"SQL(
with gone as (
  delete from stage_checkpoints where job_id = $1 and stage_index >= $2
  returning *)
insert into stage_attempts (job_id, life, stage_index, attempt, stage, node,
  ok, started_at, duration_ms)
select job_id, life, stage_index, attempts, stage, node, true, started_at,
  duration_ms
from gone where life is not null
on conflict do nothing
)SQL",
                job_id, from);
}

} // namespace

replay_ticket admin_store::start_new_life(
    const std::string& job_id, std::optional<std::int32_t> from_stage,
    const std::set<std::string>& allow, const std::string& by) {
  return with_connection("replaying job", [&](pqxx::connection& c) {
    pqxx::work w{c};
    auto jr = w.exec_params(
        "select state, pipeline, stage_index, life, payload::text, tenant, "
        "correlation_id, priority from jobs where job_id = $1 for update",
        job_id);
    if (jr.empty())
      throw admin_failure("unknown_job",
                          "unknown job '" + job_id + "' — try: dlq");
    const auto& r = jr[0];
    replay_ticket t;
    t.job_id = job_id;
    std::string state = r[0].c_str();
    t.pipeline = r[1].c_str();
    t.life = r[3].as<int>();
    t.payload = r[4].is_null() ? "null" : r[4].c_str();
    t.tenant = r[5].c_str();
    t.correlation_id = r[6].c_str();
    t.priority = r[7].as<int>();
    if (state == "queued") {
      // Accepted for this life already: only the delivery may be missing
      // (a publish that failed); publishing again is idempotent.
      t.republish_only = true;
      t.from_stage = r[2].as<int>();
      w.commit();
      return t;
    }
    if (!allow.count(state)) {
      std::string allowed;
      for (auto& a : allow)
        allowed += (allowed.empty() ? "" : " or ") + a;
      throw admin_failure("conflict", "job '" + job_id + "' is " + state +
                                          "; only " + allowed +
                                          " jobs can be run again");
    }
    std::int32_t from = 0;
    if (from_stage) {
      from = *from_stage;
    } else if (state == "dead_lettered") {
      auto d = w.exec_params(
          "select failed_stage from dead_letters where job_id = $1", job_id);
      from =
          d.empty() || d[0][0].is_null() ? r[2].as<int>() : d[0][0].as<int>();
    }
    if (from < 0)
      throw admin_failure("invalid_request", "stage index must be >= 0");
    t.from_stage = from;
    t.life += 1;
    w.exec_params(
        R"SQL(
update jobs set life = $2, start_stage = $3, state = 'queued', attempt = 0,
  stage_index = $3, epoch = epoch + 1, result = null, finished_at = null,
  next_attempt_at = null, lease_owner = null, lease_until = null,
  last_error = null, stream_seq = null, updated_at = now()
where job_id = $1
)SQL",
        job_id, t.life, from);
    drop_checkpoints_from(w, job_id, from);
    w.exec_params("update dead_letters set replay_count = replay_count + 1, "
                  "replayed_at = now() where job_id = $1",
                  job_id);
    json body{{"type", to_string(event_type::job_replayed)},
              {"job_id", job_id},
              {"pipeline", t.pipeline},
              {"stage_index", from},
              {"life", t.life},
              {"node", by},
              {"was", state}};
    w.exec_params("insert into job_events (job_id, type, time, node, body) "
                  "values ($1, 'job.replayed', now(), $2, $3::jsonb)",
                  job_id, by, body.dump());
    w.commit();
    return t;
  });
}

std::pair<std::string, std::string>
admin_store::state_of(const std::string& job_id) {
  return with_connection("reading job", [&](pqxx::connection& c) {
    pqxx::read_transaction t{c};
    auto r = t.exec_params("select state, pipeline from jobs where job_id = $1",
                           job_id);
    if (r.empty())
      return std::pair<std::string, std::string>{};
    return std::pair<std::string, std::string>{r[0][0].c_str(),
                                               r[0][1].c_str()};
  });
}

bool admin_store::run_now(const std::string& job_id) {
  return with_connection("moving a job's time", [&](pqxx::connection& c) {
    pqxx::work w{c};
    auto r = w.exec_params(
        "update jobs set run_at = now(), updated_at = now() where job_id = $1 "
        "and run_at is not null and state not in ('succeeded', "
        "'dead_lettered', 'cancelled')",
        job_id);
    w.exec("select pg_notify('troupe_due', '')");
    w.commit();
    return r.affected_rows() > 0;
  });
}

bool admin_store::hand_to_scheduler(const std::string& job_id,
                                    std::int32_t life) {
  return with_connection(
      "handing a job to the scheduler", [&](pqxx::connection& c) {
        pqxx::work w{c};
        auto r = w.exec_params("update jobs set run_at = now(), updated_at = "
                               "now() where job_id = $1 and life = $2 and "
                               "state = 'queued' and run_at is null",
                               job_id, life);
        w.exec("select pg_notify('troupe_due', '')");
        w.commit();
        return r.affected_rows() > 0;
      });
}

void admin_store::published_as(const std::string& job_id, std::int32_t life,
                               std::uint64_t stream_seq) {
  try {
    with_connection("noting a message's place", [&](pqxx::connection& c) {
      pqxx::nontransaction n{c};
      n.exec_params("update jobs set stream_seq = $3 where job_id = $1 and "
                    "life = $2 and state = 'queued' and run_at is null",
                    job_id, life, static_cast<std::int64_t>(stream_seq));
      return true;
    });
  } catch (const std::exception&) {
    // Best effort: without it the sweeper cannot look for this message.
  }
}

json admin_store::cancel(const std::string& job_id, const std::string& pipeline,
                         const std::string& by) {
  return with_connection("cancelling job", [&](pqxx::connection& c) {
    pqxx::work w{c};
    // Children first (a batch that ends a child locks the child, then its
    // parent: the same order, so the two never deadlock).
    w.exec_params(admin_sql::sql_cancel_descendants, job_id, by);
    auto r = w.exec_params(
        "select state, pipeline from jobs where job_id = $1 for update",
        job_id);
    std::string was;
    std::string pipe = pipeline;
    if (r.empty()) {
      if (pipeline.empty())
        throw admin_failure(
            "unknown_job",
            "unknown job '" + job_id +
                "': no node has taken it yet; if it waits in the stream, "
                "give its pipeline — try: cancel " +
                job_id + " --pipeline P");
      w.exec_params(
          "insert into jobs (job_id, pipeline, state, epoch, finished_at, "
          "last_error) values ($1, $2, 'cancelled', 1, now(), "
          "'cancelled by an operator before any node took it')",
          job_id, pipeline);
      was = "unseen";
    } else {
      was = r[0][0].c_str();
      pipe = r[0][1].c_str();
      job_state s;
      if (from_string(was, s) && is_terminal(s))
        throw admin_failure("conflict",
                            "job '" + job_id + "' is already " + was);
      // The epoch bump fences out any run of the job still going on.
      w.exec_params(
          "update jobs set state = 'cancelled', epoch = epoch + 1, "
          "finished_at = now(), next_attempt_at = null, run_at = null, "
          "lease_owner = null, "
          "lease_until = null, last_error = 'cancelled by an operator', "
          "updated_at = now() where job_id = $1",
          job_id);
    }
    json body{
        {"type", to_string(event_type::job_cancelled)},
        {"time_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count()},
        {"job_id", job_id},
        {"pipeline", pipe},
        {"node", by},
        {"error", "cancelled by an operator"}};
    w.exec_params("insert into job_events (job_id, type, time, node, body) "
                  "values ($1, 'job.cancelled', now(), $2, $3::jsonb)",
                  job_id, by, body.dump());
    w.exec_params(admin_sql::sql_settle_family, job_id);
    w.commit();
    return json{{"job_id", job_id},
                {"pipeline", pipe},
                {"state", "cancelled"},
                {"was", was}};
  });
}

void admin_store::set_paused(const std::string& pipeline, bool paused,
                             const std::string& by) {
  with_connection("pausing pipeline", [&](pqxx::connection& c) {
    pqxx::work w{c};
    w.exec_params(
        "insert into pipeline_controls (pipeline, paused, updated_by) "
        "values ($1, $2, $3) on conflict (pipeline) do update set "
        "paused = excluded.paused, updated_by = excluded.updated_by, "
        "updated_at = now()",
        pipeline, paused, by);
    w.commit();
    return 0;
  });
}

std::set<std::string> admin_store::paused_pipelines() {
  return with_connection("reading pipeline controls", [&](pqxx::connection& c) {
    pqxx::read_transaction t{c};
    std::set<std::string> out;
    for (const auto& r :
         t.exec("select pipeline from pipeline_controls where paused"))
      out.insert(r[0].c_str());
    return out;
  });
}

json admin_store::pipeline_counts() {
  return with_connection("counting jobs", [&](pqxx::connection& c) {
    pqxx::read_transaction t{c};
    json out = json::object();
    auto entry = [&](const std::string& p) -> json& {
      auto& e = out[p];
      if (e.is_null())
        e = json{{"states", json::object()},
                 {"last_minute",
                  {{"succeeded", 0},
                   {"dead_lettered", 0},
                   {"cancelled", 0},
                   {"retries", 0}}},
                 {"dead_letters", 0},
                 {"paused", false}};
      return e;
    };
    for (const auto& r : t.exec("select pipeline, state, count(*) from jobs "
                                "group by pipeline, state"))
      entry(r[0].c_str())["states"][r[1].c_str()] = r[2].as<std::int64_t>();
    for (const auto& r :
         t.exec("select pipeline, state, count(*) from jobs where finished_at "
                "> now() - interval '60 seconds' group by pipeline, state"))
      entry(r[0].c_str())["last_minute"][r[1].c_str()] =
          r[2].as<std::int64_t>();
    for (const auto& r :
         t.exec("select j.pipeline, count(*) from job_attempts a join jobs j "
                "using (job_id) where not a.ok and a.started_at > now() - "
                "interval '60 seconds' group by j.pipeline"))
      entry(r[0].c_str())["last_minute"]["retries"] = r[1].as<std::int64_t>();
    for (const auto& r :
         t.exec("select d.pipeline, count(*) from dead_letters d join jobs j "
                "using (job_id) where j.state = 'dead_lettered' group by "
                "d.pipeline"))
      entry(r[0].c_str())["dead_letters"] = r[1].as<std::int64_t>();
    for (const auto& r :
         t.exec("select pipeline from pipeline_controls where paused"))
      entry(r[0].c_str())["paused"] = true;
    return out;
  });
}

void admin_store::ping() {
  with_connection("probing PostgreSQL", [&](pqxx::connection& c) {
    pqxx::nontransaction n{c};
    n.exec("select 1");
    return 0;
  });
}

json admin_store::purge(const std::string& job_id, const std::string& by) {
  return with_connection("purging job", [&](pqxx::connection& c) {
    pqxx::work w{c};
    auto r = w.exec_params(
        "select state, pipeline from jobs where job_id = $1 for update",
        job_id);
    if (r.empty())
      throw admin_failure("unknown_job",
                          "unknown job '" + job_id + "' — try: dlq");
    std::string state = r[0][0].c_str();
    if (state != "dead_lettered")
      throw admin_failure("conflict", "job '" + job_id + "' is " + state +
                                          "; only dead letters are purged "
                                          "(finished jobs age out by "
                                          "retention)");
    std::string pipeline = r[0][1].c_str();
    w.exec_params("delete from job_events where job_id = $1", job_id);
    w.exec_params("delete from jobs where job_id = $1", job_id);
    w.commit();
    (void)by;
    return json{{"job_id", job_id}, {"pipeline", pipeline}, {"purged", true}};
  });
}

} // namespace troupe
