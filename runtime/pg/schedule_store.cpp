#include "runtime/pg/schedule_store.hpp"
#include "runtime/pg/lazy_connection.hpp"

#include "messages/json_text.hpp"

namespace troupe {

namespace {

// Due jobs, oldest first, by the partial index on run_at. Terminal rows
// never wait (cancel clears run_at); the state test is a second guard.
const char* const sql_due = R"SQL(
select job_id, pipeline, state, gen + 1,
  greatest(0, (extract(epoch from now() - run_at) * 1000)::bigint),
  tenant, correlation_id, priority
from jobs
where run_at <= now()
  and state not in ('succeeded', 'dead_lettered', 'cancelled')
order by run_at
limit $1
for update skip locked
)SQL";

// Published: in the stream now, claimable only from this generation.
const char* const sql_published = R"SQL(
update jobs j set run_at = null, gen = gen + 1, state = 'queued',
  lease_owner = null, lease_until = null, updated_at = now(),
  stream_seq = x.seq
from jsonb_to_recordset($1::jsonb) as x(job_id text, seq bigint)
where j.job_id = x.job_id
)SQL";

// Not published (NATS down, or no stream takes the subject): due again in
// a while, so that it does not keep the jobs behind it from the stream.
const char* const sql_unpublished = R"SQL(
update jobs set run_at = now() + interval '5 seconds',
  last_error = 'not published yet: ' || $2, updated_at = now()
where job_id = any(array(select jsonb_array_elements_text($1::jsonb)))
)SQL";

// Jobs whose node stopped renewing its lease: due now, and fenced (epoch
// + 1) so that a run still going on somewhere commits nothing. A node's
// jobs go when its row in node_leases expires; a job an older node holds
// under a lease of its own (lease_until) goes when that expires.
const char* const sql_rescue = R"SQL(
with lapsed as (
  select j.job_id from node_leases n
  join jobs j on j.lease_owner = n.owner
  where n.until < now() and j.state in ('running', 'retrying')
    and j.run_at is null and j.lease_until is null
  limit $1
  for update of j skip locked),
own_lease as (
  select job_id from jobs
  where state in ('running', 'retrying') and run_at is null
    and lease_until < now()
  order by lease_until
  limit $1
  for update skip locked)
update jobs set run_at = now(), epoch = epoch + 1, lease_until = null,
  updated_at = now()
where job_id in (select job_id from lapsed union select job_id from own_lease)
returning job_id
)SQL";

// One row for every job this node runs.
const char* const sql_renew = R"SQL(
insert into node_leases (owner, node, until)
values ($1, $2, now() + $3::bigint * interval '1 millisecond')
on conflict (owner) do update set until = excluded.until
)SQL";

// A node that stops lets go at once: whatever it still holds is rescued at
// the next pass of any node, not a lease later.
const char* const sql_release = R"SQL(
update node_leases set until = now() where owner = $1
)SQL";

// Leases that lapsed long ago and hold no job any more.
const char* const sql_forget = R"SQL(
delete from node_leases n
where n.until < now() - interval '10 minutes'
  and not exists (select 1 from jobs j where j.lease_owner = n.owner
    and j.state in ('running', 'retrying') and j.run_at is null)
)SQL";

const char* const sql_backlog = R"SQL(
select count(*), count(*) filter (where run_at <= now()),
  coalesce((extract(epoch from now() - min(run_at)
    filter (where run_at <= now())) * 1000)::bigint, 0)
from jobs where run_at is not null
)SQL";

const char* const sql_next_due = R"SQL(
select greatest(0, (extract(epoch from min(run_at) - now()) * 1000)::bigint)
from jobs where run_at is not null
)SQL";

std::string wake_of(const std::string& state) {
  if (state == "scheduled")
    return "scheduled";
  if (state == "retrying")
    return "retry";
  if (state == "waiting")
    return "callback";
  return "rescue";
}

struct due_listener : pqxx::notification_receiver {
  due_listener(pqxx::connection_base& c, bool* flag)
      : pqxx::notification_receiver(c, "troupe_due"), flag_(flag) {}
  void operator()(const std::string&, int) override { *flag_ = true; }

private:
  bool* flag_;
};

} // namespace

struct schedule_store::impl {
  std::string owner;
  std::unique_ptr<due_listener> listener;
  bool notified = false;
  lazy_connection db;

  impl(std::string url, std::string lease_owner)
      : owner(std::move(lease_owner)),
        db(
            std::move(url),
            [this](pqxx::connection& c) {
              c.prepare("due", sql_due);
              c.prepare("published", sql_published);
              c.prepare("unpublished", sql_unpublished);
              c.prepare("rescue", sql_rescue);
              c.prepare("renew", sql_renew);
              c.prepare("release", sql_release);
              c.prepare("forget", sql_forget);
              c.prepare("next_due", sql_next_due);
              c.prepare("backlog", sql_backlog);
              listener = std::make_unique<due_listener>(c, &notified);
            },
            [this] { listener.reset(); }) {}

  template <class F>
  auto guarded(const char* what, F f) {
    return db.run(what, std::move(f));
  }
};

schedule_store::schedule_store(std::string pg_url, std::string lease_owner)
    : impl_(std::make_unique<impl>(std::move(pg_url), std::move(lease_owner))) {
}

std::string node_of_owner(const std::string& owner) {
  auto hash = owner.rfind('#');
  return hash == std::string::npos ? owner : owner.substr(0, hash);
}

schedule_store::~schedule_store() = default;

caf::expected<due_summary>
schedule_store::publish_due(std::size_t limit, const due_publisher& publish) {
  return impl_->guarded("publishing due jobs", [&](pqxx::connection& c) {
    due_summary out;
    pqxx::work w{c};
    std::vector<due_job> due;
    for (const auto& row :
         w.exec_prepared("due", static_cast<std::int64_t>(limit))) {
      due_job d;
      d.job_id = row[0].as<std::string>();
      d.pipeline = row[1].as<std::string>();
      d.wake = wake_of(row[2].as<std::string>());
      d.gen = row[3].as<std::int32_t>();
      d.lag_ms = row[4].as<std::int64_t>();
      d.tenant = row[5].as<std::string>();
      d.correlation_id = row[6].as<std::string>();
      d.priority = row[7].as<std::int32_t>();
      due.push_back(std::move(d));
    }
    if (due.empty())
      return out;
    // The rows stay locked while they are published: a crash here rolls
    // back, and the next pass publishes them again.
    auto sent = publish(due);
    sent.resize(due.size(), 0);
    json_array_writer ids, failed;
    for (std::size_t i = 0; i < due.size(); ++i) {
      if (sent[i] == 0) {
        ++out.failed;
        failed.str(due[i].job_id);
        continue;
      }
      ++out.published;
      ids.object()
          .str("job_id", due[i].job_id)
          .num("seq", static_cast<std::int64_t>(sent[i]))
          .close();
      out.lags_ms.push_back(due[i].lag_ms);
    }
    if (out.published > 0)
      w.exec_prepared("published", ids.done());
    if (out.failed > 0)
      w.exec_prepared("unpublished", failed.done(),
                      std::string{"the stream did not acknowledge it"});
    w.commit();
    return out;
  });
}

caf::expected<std::size_t> schedule_store::rescue_expired(std::size_t limit) {
  return impl_->guarded("rescuing jobs", [&](pqxx::connection& c) {
    pqxx::work w{c};
    auto r = w.exec_prepared("rescue", static_cast<std::int64_t>(limit));
    if (r.size() < limit)
      w.exec_prepared("forget");
    w.commit();
    return static_cast<std::size_t>(r.size());
  });
}

caf::error schedule_store::renew_lease(duration_ms lease) {
  auto r =
      impl_->guarded("renewing the node's lease", [&](pqxx::connection& c) {
        pqxx::work w{c};
        w.exec_prepared("renew", impl_->owner, node_of_owner(impl_->owner),
                        static_cast<std::int64_t>(lease.count()));
        w.commit();
        return true;
      });
  return r ? caf::error{} : r.error();
}

caf::error schedule_store::release_lease() {
  auto r =
      impl_->guarded("releasing the node's lease", [&](pqxx::connection& c) {
        pqxx::work w{c};
        w.exec_prepared("release", impl_->owner);
        w.commit();
        return true;
      });
  return r ? caf::error{} : r.error();
}

caf::expected<schedule_store::backlog> schedule_store::count_waiting() {
  return impl_->guarded("counting waiting jobs", [&](pqxx::connection& c) {
    pqxx::nontransaction n{c};
    auto r = n.exec_prepared1("backlog");
    return backlog{r[0].as<std::int64_t>(), r[1].as<std::int64_t>(),
                   r[2].as<std::int64_t>()};
  });
}

caf::expected<std::optional<duration_ms>> schedule_store::next_due() {
  return impl_->guarded("reading the next due job", [&](pqxx::connection& c) {
    pqxx::nontransaction n{c};
    auto r = n.exec_prepared1("next_due");
    std::optional<duration_ms> out;
    if (!r[0].is_null())
      out = duration_ms{r[0].as<std::int64_t>()};
    return out;
  });
}

caf::expected<bool> schedule_store::wait_for_due(duration_ms timeout) {
  return impl_->guarded("waiting for due jobs", [&](pqxx::connection& c) {
    if (!impl_->notified) {
      auto us = std::max<std::int64_t>(0, timeout.count()) * 1000;
      c.await_notification(us / 1000000, us % 1000000);
    }
    bool got = impl_->notified;
    impl_->notified = false;
    return got;
  });
}

} // namespace troupe
