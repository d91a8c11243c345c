#include "runtime/pg/cron_store.hpp"
#include "runtime/pg/lazy_connection.hpp"

#include <spdlog/spdlog.h>

#include "config/cron.hpp"

namespace troupe {

namespace {

const char* const sql_register = R"SQL(
insert into schedules as s (name, cron, timezone, pipeline, payload, overlap,
  catch_up, node)
values ($1, $2, $3, $4, $5::jsonb, $6, $7, $8)
on conflict (name) do update set cron = excluded.cron,
  timezone = excluded.timezone, pipeline = excluded.pipeline,
  payload = excluded.payload, overlap = excluded.overlap,
  catch_up = excluded.catch_up, node = excluded.node, updated_at = now(),
  next_at = case when s.cron = excluded.cron and s.timezone = excluded.timezone
    then s.next_at end
)SQL";

const char* const sql_due_schedules = R"SQL(
select name, cron, timezone, pipeline, coalesce(payload::text, 'null'),
  overlap, catch_up, extract(epoch from next_at)::bigint,
  coalesce(last_job, ''), floor(extract(epoch from now()))::bigint
from schedules
where not paused and (next_at is null or next_at <= now())
order by name
for update skip locked
)SQL";

const char* const sql_fire = R"SQL(
insert into jobs (job_id, pipeline, state, payload, run_at, epoch)
values ($1, $2, 'scheduled', $3::jsonb, now(), 0)
on conflict (job_id) do nothing
)SQL";

const char* const sql_advance = R"SQL(
update schedules set next_at = case when $2::bigint >= 0
    then to_timestamp($2::bigint) end,
  last_at = case when $3::bigint >= 0 then to_timestamp($3::bigint)
    else last_at end,
  last_job = case when $4 <> '' then $4 else last_job end, updated_at = now()
where name = $1
)SQL";

const char* const sql_next_slot = R"SQL(
select case when bool_or(next_at is null) then 0 else
  greatest(0, (extract(epoch from min(next_at) - now()) * 1000)::bigint) end
from schedules where not paused
)SQL";

/// One row of sql_due_schedules.
struct due_schedule {
  std::string name, cron, tz, pipeline, payload, overlap, catch_up, last_job;
  std::optional<std::int64_t> next_at;
  std::int64_t now = 0;
};

due_schedule read_due(const pqxx::row& r) {
  due_schedule d;
  d.name = r[0].as<std::string>();
  d.cron = r[1].as<std::string>();
  d.tz = r[2].as<std::string>();
  d.pipeline = r[3].as<std::string>();
  d.payload = r[4].as<std::string>();
  d.overlap = r[5].as<std::string>();
  d.catch_up = r[6].as<std::string>();
  if (!r[7].is_null())
    d.next_at = r[7].as<std::int64_t>();
  d.last_job = r[8].as<std::string>();
  d.now = r[9].as<std::int64_t>();
  return d;
}

/// Converts between UTC and the zone's wall clock (naive seconds), by the
/// database's zone rules (a wall time a DST change skips moves forward).
struct zone {
  pqxx::work& w;
  const std::string& tz;

  std::int64_t local(std::int64_t utc) const {
    if (tz == "UTC")
      return utc;
    return w
        .exec_params1("select extract(epoch from (to_timestamp($1) at time "
                      "zone $2))::bigint",
                      utc, tz)[0]
        .as<std::int64_t>();
  }

  std::int64_t utc(std::int64_t local) const {
    if (tz == "UTC" || local < 0)
      return local;
    return w
        .exec_params1("select extract(epoch from ((to_timestamp($1) at time "
                      "zone 'UTC') at time zone $2))::bigint",
                      local, tz)[0]
        .as<std::int64_t>();
  }
};

bool is_active(pqxx::work& w, const std::string& job_id) {
  return w.exec_params("select 1 from jobs where job_id = $1 and state not "
                       "in ('succeeded', 'dead_lettered', 'cancelled')",
                       job_id)
             .size() > 0;
}

/// The slots of `d` due by now (naive, oldest first), and the first slot
/// after now (-1: none).
std::vector<std::int64_t> due_slots(const cron_expr& e, std::int64_t from,
                                    std::int64_t now, std::int64_t& following) {
  std::vector<std::int64_t> due;
  auto s = from;
  while (s >= 0 && s <= now && due.size() < 100000) {
    due.push_back(s);
    s = cron_next(e, s);
  }
  following = s >= 0 && s <= now ? cron_next(e, now) : s;
  return due;
}

/// Fires what is due of one schedule; returns the jobs created.
std::size_t fire_one(pqxx::work& w, const due_schedule& d) {
  cron_expr e;
  std::string why;
  if (!parse_cron(d.cron, e, why)) {
    spdlog::error("schedule {}: {} (not fired)", d.name, why);
    return 0;
  }
  zone z{w, d.tz};
  auto now = z.local(d.now);
  if (!d.next_at) {
    // Just registered: it fires from its next slot.
    w.exec_prepared("advance", d.name, z.utc(cron_next(e, now)),
                    std::int64_t{-1}, std::string{});
    return 0;
  }
  std::int64_t following = -1;
  auto due = due_slots(e, z.local(*d.next_at), now, following);
  auto fire = slots_to_fire(due, now, d.catch_up);
  if (d.overlap == "skip" && !fire.empty()) {
    // One job at a time: the newest slot, if the last job has ended.
    fire = {fire.back()};
    if (!d.last_job.empty() && is_active(w, d.last_job))
      fire.clear();
  }
  std::string last_id;
  for (auto slot : fire) {
    last_id = d.name + "@" + std::to_string(z.utc(slot));
    w.exec_prepared("fire", last_id, d.pipeline, d.payload);
  }
  w.exec_prepared("advance", d.name, z.utc(following),
                  fire.empty() ? std::int64_t{-1} : z.utc(fire.back()),
                  last_id);
  return fire.size();
}

} // namespace

struct cron_store::impl {
  std::string node;
  lazy_connection db;

  impl(std::string url, std::string node_id)
      : node(std::move(node_id)), db(std::move(url), [](pqxx::connection& c) {
          c.prepare("register", sql_register);
          c.prepare("due_schedules", sql_due_schedules);
          c.prepare("fire", sql_fire);
          c.prepare("advance", sql_advance);
          c.prepare("next_slot", sql_next_slot);
        }) {}
};

cron_store::cron_store(std::string pg_url, std::string node_id)
    : impl_(std::make_unique<impl>(std::move(pg_url), std::move(node_id))) {}

cron_store::~cron_store() = default;

caf::error cron_store::register_schedules(
    const std::map<std::string, schedule_config>& schedules) {
  auto done = impl_->db.run("registering schedules", [&](pqxx::connection& c) {
    pqxx::work w{c};
    for (const auto& [name, s] : schedules) {
      w.exec_prepared("register", name, s.cron, s.timezone, s.pipeline,
                      s.payload, s.overlap, s.catch_up, impl_->node);
    }
    w.commit();
    return true;
  });
  return done ? caf::error{} : done.error();
}

caf::expected<std::size_t> cron_store::fire_due() {
  return impl_->db.run("firing schedules", [&](pqxx::connection& c) {
    pqxx::work w{c};
    std::vector<due_schedule> due;
    for (const auto& r : w.exec_prepared("due_schedules"))
      due.push_back(read_due(r));
    std::size_t n = 0;
    for (const auto& d : due)
      n += fire_one(w, d);
    if (n > 0)
      w.exec("select pg_notify('troupe_due', '')");
    w.commit();
    return n;
  });
}

caf::expected<std::optional<duration_ms>> cron_store::next_slot() {
  return impl_->db.run("reading the next slot", [&](pqxx::connection& c) {
    pqxx::nontransaction n{c};
    auto r = n.exec_prepared1("next_slot");
    std::optional<duration_ms> out;
    if (!r[0].is_null())
      out = duration_ms{r[0].as<std::int64_t>()};
    return out;
  });
}

} // namespace troupe
