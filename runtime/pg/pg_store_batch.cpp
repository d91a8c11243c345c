// The store's group commit (runtime/pg/pg_store.cpp): one transaction runs the
// claims and writes of a batch as a few statements over JSON record sets.
#include "runtime/pg/pg_store_batch.hpp"
#include "runtime/pg/attempt_fold.hpp"
#include "runtime/pg/pg_store_copy.hpp"
#include "runtime/pg/pg_store_refusal.hpp"
#include "runtime/pg/pg_store_sql.hpp"
#include "runtime/pg/token_hash.hpp"

#include <algorithm>
#include <chrono>
#include <set>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "messages/errc.hpp"
#include "messages/json_codec.hpp"
#include "messages/json_text.hpp"

namespace troupe {

namespace {

using namespace pg_sql;
using json = nlohmann::json;

/// jsonb prints as `{"a": 1}`; stages and scripts get the compact form the
/// publisher's JSON was normalised to (`{"a":1}`), whether the job is fresh
/// or resumed from the store. Runs on the writer thread.
std::string compact_json(const pqxx::field& f) {
  if (f.is_null())
    return "null";
  auto j = json::parse(f.c_str(), nullptr, false);
  return j.is_discarded() ? f.as<std::string>() : j.dump();
}

} // namespace

std::int64_t write_wait_ms(const job_write& x, std::int64_t now_ns,
                           std::int64_t wall_now_ms) {
  if (x.next_attempt_at_ms <= 0)
    return 0;
  auto left = x.wait_ms >= 0 ? x.wait_ms - (now_ns - x.decided_ns) / 1000000
                             : x.next_attempt_at_ms - wall_now_ms;
  return std::max<std::int64_t>(0, left);
}

void prepare_store_statements(pqxx::connection& c) {
  // Every statement of a batch touches a few rows by primary key. The
  // planner assumes 100 rows for a JSON record set and, on tables of a few
  // thousand rows, prefers a hash join over a full scan of jobs: a cost
  // that grows with the table. Index lookups are always right here. Set
  // once for the writer's connection (it runs batches only), not per batch:
  // two round trips fewer per commit. libpqxx restores them if it
  // reconnects.
  c.set_variable("enable_seqscan", "off");
  c.set_variable("enable_hashjoin", "off");
  c.prepare("claim", sql_claim);
  c.prepare("states", sql_states);
  c.prepare("checkpoints", sql_checkpoints);
  c.prepare("attempts", sql_attempts);
  c.prepare("update", sql_update);
  c.prepare("create", sql_create);
  c.prepare("insert_checkpoints", sql_insert_checkpoints);
  c.prepare("insert_attempts", sql_insert_attempts);
  c.prepare("insert_events", sql_insert_events);
  c.prepare("dead_letters", sql_dead_letters);
  c.prepare("insert_spawned", sql_insert_spawned);
  c.prepare("resume_parents", sql_resume_parents);
  c.prepare("settle_batches", sql_settle_batches);
  c.prepare("release", sql_release);
}

namespace {

// -- claims -------------------------------------------------------------------
// Record sets are written as JSON text directly (json_text.hpp): building
// nlohmann trees for them was a large share of the node's CPU per job.

using index_map = std::unordered_map<std::string, std::size_t>;

std::string claim_records(const std::vector<store_request>& reqs,
                          index_map& index) {
  json_array_writer claims;
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    if (!reqs[i].is_claim)
      continue;
    const auto& s = reqs[i].spec;
    auto o = claims.object();
    o.str("job_id", s.job_id)
        .str("pipeline", s.pipeline)
        .str("tenant", s.tenant)
        .str("correlation_id", s.correlation_id)
        .num("priority", s.priority)
        .str("payload", s.payload.empty() ? "null" : s.payload)
        .num("life", s.replay_life)
        .num("gen", s.gen)
        .str("traceparent", s.traceparent)
        .str("tracestate", s.tracestate)
        .num("seq", static_cast<std::int64_t>(s.stream_seq));
    o.close();
    index[s.job_id] = i;
  }
  return claims.empty() ? std::string{} : claims.done();
}

/// A claimed row as the job actor's snapshot.
void read_claimed(const pqxx::row& row, const store_request& req,
                  job_snapshot& snap) {
  snap.spec.job_id = row[0].as<std::string>();
  snap.epoch = row[1].as<std::int64_t>();
  snap.life = row[2].as<std::int32_t>();
  snap.start_stage = row[3].as<std::int32_t>();
  snap.created = row[4].as<bool>();
  // A job created by this claim has the payload we just sent (already
  // normalised on intake): not sent back, not parsed again.
  snap.spec.payload = snap.created ? req.spec.payload : compact_json(row[5]);
  if (snap.spec.payload.empty())
    snap.spec.payload = "null";
  snap.spec.tenant = row[6].as<std::string>();
  snap.spec.correlation_id = row[7].as<std::string>();
  snap.spec.priority = row[8].as<std::int32_t>();
  snap.spec.pipeline = row[9].as<std::string>();
  if (!row[10].is_null())
    snap.progress = row[10].c_str();
  if (!row[11].is_null())
    snap.callback = row[11].c_str();
  snap.spec.traceparent = row[12].c_str();
  snap.spec.tracestate = row[13].c_str();
  if (!row[14].is_null())
    snap.spec.parent_id = row[14].c_str();
  if (!row[15].is_null())
    snap.spec.batch_id = row[15].c_str();
  if (!row[16].is_null())
    snap.children = row[16].c_str();
  snap.state = job_state::running;
}

checkpoint read_checkpoint(const pqxx::row& row) {
  checkpoint cp;
  cp.stage_index = row[1].as<std::int32_t>();
  cp.stage = row[2].as<std::string>();
  cp.output = compact_json(row[3]);
  cp.attempts = row[4].as<std::int32_t>();
  cp.duration_ms = row[5].as<std::int64_t>();
  cp.finished_at_ms = row[6].as<std::int64_t>();
  return cp;
}

attempt_record read_attempt(const pqxx::row& row) {
  attempt_record a;
  a.life = row[1].as<std::int32_t>();
  a.stage_index = row[2].as<std::int32_t>();
  a.attempt = row[3].as<std::int32_t>();
  a.stage = row[4].as<std::string>();
  a.node = row[5].as<std::string>();
  a.ok = row[6].as<bool>();
  a.error_code = row[7].as<std::string>();
  a.error_message = row[8].as<std::string>();
  a.started_at_ms = row[9].as<std::int64_t>();
  a.duration_ms = row[10].as<std::int64_t>();
  return a;
}

/// Checkpoints and attempts of the jobs that existed before their claim:
/// where a resumed run starts, and its history.
void load_history(pqxx::work& w, const std::string& ids, const index_map& index,
                  std::vector<store_result>& out) {
  auto snap = [&](const pqxx::row& row) -> job_snapshot& {
    return out[index.at(row[0].as<std::string>())].snapshot;
  };
  for (const auto& row : w.exec_prepared("checkpoints", ids))
    snap(row).checkpoints.push_back(read_checkpoint(row));
  for (const auto& row : w.exec_prepared("attempts", ids))
    snap(row).attempts.push_back(read_attempt(row));
}

void run_claims(pqxx::work& w, const std::vector<store_request>& reqs,
                std::vector<store_result>& out, const pg_store_options& opts) {
  index_map index;
  auto records = claim_records(reqs, index);
  if (records.empty())
    return;
  std::set<std::string> taken;
  json existing = json::array();
  for (const auto& row : w.exec_prepared("claim", records, opts.lease_owner)) {
    auto id = row[0].as<std::string>();
    auto& snap = out[index.at(id)].snapshot;
    read_claimed(row, reqs[index.at(id)], snap);
    taken.insert(id);
    if (!snap.created)
      existing.push_back(id);
  }
  // Not taken: the job is terminal, or the delivery does not match it.
  json not_taken = json::array();
  for (auto& [id, i] : index)
    if (!taken.count(id))
      not_taken.push_back(id);
  if (!not_taken.empty())
    for (const auto& row :
         w.exec_prepared("states", not_taken.dump(), opts.lease_owner)) {
      auto i = index.at(row[0].as<std::string>());
      report_not_taken(row, reqs[i], out[i]);
    }
  if (!existing.empty())
    load_history(w, existing.dump(), index, out);
}

// -- writes -------------------------------------------------------------------

/// What the store keeps of a waiting write's token: its hash.
std::string callback_hash(const job_write& x) {
  return x.callback_token.empty() ? std::string{}
                                  : token_hash(x.callback_token);
}

/// A write's wait from now (write_wait_ms) by this process's clocks.
/// PostgreSQL adds it to its own now(): a node whose wall clock jumped
/// cannot push a wait hours away (chaos seeds 1 and 2).
std::int64_t wait_ms(const job_write& x) {
  using namespace std::chrono;
  return write_wait_ms(
      x,
      duration_cast<nanoseconds>(steady_clock::now().time_since_epoch())
          .count(),
      duration_cast<milliseconds>(system_clock::now().time_since_epoch())
          .count());
}

void create_record(json_array_writer& creates, const job_write& x) {
  const auto& s = x.spec;
  auto o = creates.object();
  o.str("job_id", x.job_id)
      .str("pipeline", x.pipeline)
      .str("tenant", s.tenant)
      .str("correlation_id", s.correlation_id)
      .num("priority", s.priority)
      .str("payload", s.payload.empty() ? "null" : s.payload)
      .str("state", to_string(x.state))
      .num("stage_index", x.stage_index)
      .num("attempt", x.attempt)
      .num("next_ms", x.next_attempt_at_ms)
      .num("wait_ms", wait_ms(x))
      .str("last_error", x.last_error)
      .str("result", x.result)
      .num("started_ms", x.started_at_ms)
      .boolean("wait", x.wait_in_store)
      .str("callback", callback_hash(x))
      .num("since_ms", x.callback_since_ms)
      .str("progress", x.progress)
      .str("traceparent", s.traceparent)
      .str("tracestate", s.tracestate)
      .str("children", x.children)
      .num("seq", static_cast<std::int64_t>(s.stream_seq));
  o.close();
}

void update_record(json_array_writer& updates, const job_write& x) {
  auto o = updates.object();
  o.str("job_id", x.job_id)
      .num("epoch", x.epoch)
      .str("state", to_string(x.state))
      .num("stage_index", x.stage_index)
      .num("attempt", x.attempt)
      .num("next_ms", x.next_attempt_at_ms)
      .num("wait_ms", wait_ms(x))
      .str("last_error", x.last_error)
      .str("result", x.result)
      .boolean("wait", x.wait_in_store)
      .str("progress", x.progress)
      .str("callback", callback_hash(x))
      .num("since_ms", x.callback_since_ms)
      .str("children", x.children);
  o.close();
}

/// The job rows of the batch's writes: the ids whose write landed (epoch
/// still theirs, or created now).
std::set<std::string> apply_job_rows(pqxx::work& w,
                                     const std::vector<store_request>& reqs,
                                     index_map& index,
                                     const pg_store_options& opts) {
  json_array_writer updates, creates;
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    if (reqs[i].is_claim || reqs[i].write.release)
      continue;
    const auto& x = reqs[i].write;
    index[x.job_id] = i;
    x.create ? create_record(creates, x) : update_record(updates, x);
  }
  std::set<std::string> applied;
  if (!updates.empty())
    for (const auto& row : w.exec_prepared("update", updates.done()))
      applied.insert(row[0].as<std::string>());
  if (!creates.empty())
    for (const auto& row :
         w.exec_prepared("create", creates.done(), opts.lease_owner))
      applied.insert(row[0].as<std::string>());
  return applied;
}

/// The rows a landed update adds: checkpoints, attempts and events.
struct child_rows {
  json_array_writer cps, atts, evs, dead;

  void add(const std::string& id, const job_write& x) {
    for (const auto& cp : x.checkpoints) {
      const auto* a = folded_attempt(x, cp); // life 0: holds none
      auto o = cps.object();
      o.str("job_id", id)
          .num("stage_index", cp.stage_index)
          .str("stage", cp.stage)
          .str("output", cp.output)
          .num("attempts", cp.attempts)
          .num("duration_ms", cp.duration_ms)
          .num("finished_ms", cp.finished_at_ms)
          .num("life", a ? a->life : 0)
          .str("node", a ? a->node : std::string{})
          .num("started_ms", a ? a->started_at_ms : 0);
      o.close();
    }
    for (const auto& a : x.attempts) {
      if (is_folded(x, a))
        continue;
      auto o = atts.object();
      o.str("job_id", id)
          .num("life", a.life)
          .num("stage_index", a.stage_index)
          .num("attempt", a.attempt)
          .str("stage", a.stage)
          .str("node", a.node)
          .boolean("ok", a.ok)
          .str("error_code", a.error_code)
          .str("error_message", a.error_message)
          .num("started_ms", a.started_at_ms)
          .num("duration_ms", a.duration_ms);
      o.close();
    }
    for (const auto& ev : x.events) {
      auto o = evs.object();
      o.str("job_id", id)
          .str("type", ev.type)
          .num("time_ms", ev.time_ms)
          .str("node", ev.node)
          .str("stage", ev.stage)
          .num("attempt", ev.attempt)
          .str("body", encode_logged_event(ev));
      o.close();
    }
  }

  void insert(pqxx::work& w) {
    if (!cps.empty())
      w.exec_prepared("insert_checkpoints", cps.done());
    if (!atts.empty())
      w.exec_prepared("insert_attempts", atts.done());
    if (!evs.empty())
      w.exec_prepared("insert_events", evs.done());
    if (!dead.empty())
      w.exec_prepared("dead_letters", dead.done());
  }
};

/// A write that did not land: the job exists (a speculative create), or a
/// newer run owns it (fenced out: nothing of this write lands).
void report_refused(const std::string& id, const job_write& x,
                    store_result& res) {
  auto code = x.create ? errc::job_exists : errc::stale_epoch;
  res.code = static_cast<std::uint8_t>(code);
  res.message = x.create ? "job " + id + " exists already"
                         : "job " + id + " is owned by a newer run";
}

/// Child jobs (docs/workflows.md): creates the children of landed spawn
/// writes, then resumes the parents whose children are now all terminal
/// (those that spawned only children that ended already, and the parents
/// of children whose terminal write landed), in this transaction.
void join_families(pqxx::work& w, const std::vector<store_request>& reqs,
                   const index_map& index,
                   const std::set<std::string>& applied) {
  json_array_writer spawned;
  std::set<std::string> parents, batches;
  for (const auto& [id, i] : index) {
    const auto& x = reqs[i].write;
    if (!applied.count(id))
      continue;
    for (std::size_t k = 0; k < x.spawn.size(); ++k) {
      const auto& c = x.spawn[k];
      auto o = spawned.object();
      o.str("job_id", c.job_id)
          .str("pipeline", c.pipeline)
          .str("payload", c.payload)
          .num("priority", c.priority)
          .str("parent_id", id)
          .num("parent_stage", x.stage_index)
          .num("child_index", static_cast<std::int64_t>(k));
      o.close();
    }
    if (!x.spawn.empty())
      parents.insert(id);
    if (!x.parent_id.empty() && is_terminal(x.state))
      parents.insert(x.parent_id);
    if (!x.batch_id.empty() && is_terminal(x.state))
      batches.insert(x.batch_id);
  }
  if (!spawned.empty()) {
    w.exec_prepared("insert_spawned", spawned.done());
    w.exec("select pg_notify('troupe_due', '')");
  }
  if (!parents.empty())
    w.exec_prepared("resume_parents", json(parents).dump());
  if (!batches.empty())
    w.exec_prepared("settle_batches", json(batches).dump());
}

/// Jobs their node gave up (job_write::release): queued again if this
/// node's lease still holds them. Nothing to refuse: a job that moved on
/// is simply left alone.
void run_releases(pqxx::work& w, const std::vector<store_request>& reqs,
                  const pg_store_options& opts) {
  json ids = json::array();
  for (const auto& r : reqs)
    if (!r.is_claim && r.write.release)
      ids.push_back(r.write.job_id);
  if (!ids.empty())
    w.exec_prepared("release", ids.dump(), opts.lease_owner);
}

void run_writes(pqxx::work& w, const std::vector<store_request>& reqs,
                std::vector<store_result>& out, const pg_store_options& opts) {
  index_map index;
  auto applied = apply_job_rows(w, reqs, index, opts);
  child_rows children;
  std::vector<const job_write*> created;
  for (auto& [id, i] : index) {
    const auto& x = reqs[i].write;
    if (!applied.count(id)) {
      report_refused(id, x, out[i]);
      continue;
    }
    if (x.state == job_state::dead_lettered)
      children.dead.str(id);
    if (x.create)
      created.push_back(&x);
    else
      children.add(id, x);
  }
  if (!created.empty())
    copy_children(w, created);
  children.insert(w);
  join_families(w, reqs, index, applied);
}

} // namespace

void run_batch(pqxx::work& w, const std::vector<store_request>& reqs,
               std::vector<store_result>& out, const pg_store_options& opts) {
  out.assign(reqs.size(), store_result{});
  // The planner settings are the connection's (prepare_store_statements).
  run_claims(w, reqs, out, opts);
  run_writes(w, reqs, out, opts);
  run_releases(w, reqs, opts);
}

} // namespace troupe
