#include "runtime/pg_store.hpp"
#include "runtime/pg_store_copy.hpp"
#include "runtime/pg_store_sql.hpp"
#include "runtime/pg_url.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#define PQXX_HAVE_OPTIONAL
#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "actors/atoms.hpp"
#include "messages/errc.hpp"
#include "messages/json_codec.hpp"
#include "messages/json_text.hpp"
#include "runtime/nats_client.hpp"

namespace troupe {

namespace {

using namespace pg_sql;

using json = nlohmann::json;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using batch_done_atom = caf::atom_constant<caf::atom("batch_done")>;

/// One request waiting for its batch.
struct store_request {
  bool is_claim = false;
  job_spec spec;
  job_write write;
};

/// The outcome of one request, computed by a writer thread.
struct store_result {
  std::uint8_t code = 0; ///< errc
  std::string message;
  job_snapshot snapshot;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, store_result& x) {
  return f(caf::meta::type_name("store_result"), x.code, x.message, x.snapshot);
}

struct batch {
  std::uint64_t id = 0;
  std::vector<store_request> requests;
};

/// jsonb prints as `{"a": 1}`; stages and scripts get the compact form the
/// publisher's JSON was normalised to (`{"a":1}`), whether the job is fresh
/// or resumed from the store. Runs on the writer thread.
std::string compact_json(const pqxx::field& f) {
  if (f.is_null())
    return "null";
  auto j = json::parse(f.c_str(), nullptr, false);
  return j.is_discarded() ? f.as<std::string>() : j.dump();
}

/// A claim that took nothing: report the terminal state, or why the
/// delivery does not match the live job (another pipeline's id; a replay
/// of a life the job is not in).
void report_not_taken(const pqxx::row& row, const store_request& req,
                      store_result& res) {
  job_state state{};
  from_string(row[1].as<std::string>(), state);
  auto pipeline = row[4].as<std::string>();
  const auto& spec = req.spec;
  if (is_terminal(state) && pipeline == spec.pipeline) {
    res.snapshot.spec.job_id = spec.job_id;
    res.snapshot.state = state;
    res.snapshot.epoch = row[2].as<std::int64_t>();
    res.snapshot.life = row[3].as<std::int32_t>();
    return;
  }
  res.code = static_cast<std::uint8_t>(errc::conflict);
  res.message = pipeline != spec.pipeline
                    ? "job '" + spec.job_id + "' belongs to pipeline '" +
                          pipeline + "', not '" + spec.pipeline + "'"
                    : "replay of job '" + spec.job_id + "' names life " +
                          std::to_string(spec.replay_life) +
                          ", the job is in life " +
                          std::to_string(row[3].as<std::int32_t>());
}

void prepare(pqxx::connection& c) {
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
}

/// Runs the claims and writes of one batch in one transaction. Fills one
/// result per request. Throws on database errors.
void run_batch(pqxx::work& w, const std::vector<store_request>& reqs,
               std::vector<store_result>& out, const pg_store_options& opts) {
  out.assign(reqs.size(), store_result{});
  std::int64_t lease = opts.lease.count();
  // Every statement of a batch touches a few rows by primary key. The
  // planner assumes 100 rows for a JSON record set and, on tables of a few
  // thousand rows, prefers a hash join over a full scan of jobs: a cost
  // that grows with the table. Index lookups are always right here.
  w.exec("set local enable_seqscan = off");
  w.exec("set local enable_hashjoin = off");
  // -- claims -----------------------------------------------------------------
  // Record sets are written as JSON text directly (json_text.hpp): building
  // nlohmann trees for them was a large share of the node's CPU per job.
  json_array_writer claims;
  std::unordered_map<std::string, std::size_t> claim_index;
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
        .num("life", s.replay_life);
    o.close();
    claim_index[s.job_id] = i;
  }
  if (!claims.empty()) {
    std::set<std::string> taken;
    auto rows = w.exec_prepared("claim", claims.done(), opts.node_id, lease);
    json existing = json::array();
    for (const auto& row : rows) {
      auto id = row[0].as<std::string>();
      auto& res = out[claim_index.at(id)];
      auto& snap = res.snapshot;
      snap.spec.job_id = id;
      snap.epoch = row[1].as<std::int64_t>();
      snap.life = row[2].as<std::int32_t>();
      snap.start_stage = row[3].as<std::int32_t>();
      snap.created = row[4].as<bool>();
      // A job created by this claim has the payload we just sent (already
      // normalised on intake): not sent back, not parsed again.
      snap.spec.payload = snap.created ? reqs[claim_index.at(id)].spec.payload
                                       : compact_json(row[5]);
      if (snap.spec.payload.empty())
        snap.spec.payload = "null";
      snap.spec.tenant = row[6].as<std::string>();
      snap.spec.correlation_id = row[7].as<std::string>();
      snap.spec.priority = row[8].as<std::int32_t>();
      snap.spec.pipeline = row[9].as<std::string>();
      snap.state = job_state::running;
      taken.insert(id);
      if (!snap.created)
        existing.push_back(id);
    }
    // Not taken: the job is terminal, or the delivery does not match it.
    json not_taken = json::array();
    for (auto& [id, i] : claim_index)
      if (!taken.count(id))
        not_taken.push_back(id);
    if (!not_taken.empty())
      for (const auto& row : w.exec_prepared("states", not_taken.dump()))
        report_not_taken(row, reqs[claim_index.at(row[0].as<std::string>())],
                         out[claim_index.at(row[0].as<std::string>())]);
    if (!existing.empty()) {
      for (const auto& row : w.exec_prepared("checkpoints", existing.dump())) {
        checkpoint cp;
        cp.stage_index = row[1].as<std::int32_t>();
        cp.stage = row[2].as<std::string>();
        cp.output = compact_json(row[3]);
        cp.attempts = row[4].as<std::int32_t>();
        cp.duration_ms = row[5].as<std::int64_t>();
        cp.finished_at_ms = row[6].as<std::int64_t>();
        out[claim_index.at(row[0].as<std::string>())]
            .snapshot.checkpoints.push_back(std::move(cp));
      }
      for (const auto& row : w.exec_prepared("attempts", existing.dump())) {
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
        out[claim_index.at(row[0].as<std::string>())]
            .snapshot.attempts.push_back(std::move(a));
      }
    }
  }
  // -- writes -----------------------------------------------------------------
  json_array_writer updates, creates;
  std::unordered_map<std::string, std::size_t> write_index;
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    if (reqs[i].is_claim)
      continue;
    const auto& x = reqs[i].write;
    write_index[x.job_id] = i;
    if (x.create) {
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
          .str("last_error", x.last_error)
          .str("result", x.result)
          .num("started_ms", x.started_at_ms);
      o.close();
      continue;
    }
    auto o = updates.object();
    o.str("job_id", x.job_id)
        .num("epoch", x.epoch)
        .str("state", to_string(x.state))
        .num("stage_index", x.stage_index)
        .num("attempt", x.attempt)
        .num("next_ms", x.next_attempt_at_ms)
        .str("last_error", x.last_error)
        .str("result", x.result);
    o.close();
  }
  if (write_index.empty())
    return;
  std::set<std::string> applied;
  if (!updates.empty())
    for (const auto& row : w.exec_prepared("update", updates.done(), lease))
      applied.insert(row[0].as<std::string>());
  if (!creates.empty())
    for (const auto& row :
         w.exec_prepared("create", creates.done(), opts.node_id, lease))
      applied.insert(row[0].as<std::string>());
  json_array_writer cps, atts, evs, dead;
  std::vector<const job_write*> created;
  for (auto& [id, i] : write_index) {
    if (!applied.count(id)) {
      if (reqs[i].write.create) {
        out[i].code = static_cast<std::uint8_t>(errc::job_exists);
        out[i].message = "job " + id + " exists already";
        continue;
      }
      // Fenced out: a newer run owns the job; nothing of this write lands.
      out[i].code = static_cast<std::uint8_t>(errc::stale_epoch);
      out[i].message = "job " + id + " is owned by a newer run";
      continue;
    }
    const auto& x = reqs[i].write;
    if (x.state == job_state::dead_lettered)
      dead.str(id);
    if (x.create) {
      created.push_back(&x);
      continue;
    }
    for (const auto& cp : x.checkpoints) {
      auto o = cps.object();
      o.str("job_id", id)
          .num("stage_index", cp.stage_index)
          .str("stage", cp.stage)
          .str("output", cp.output)
          .num("attempts", cp.attempts)
          .num("duration_ms", cp.duration_ms)
          .num("finished_ms", cp.finished_at_ms);
      o.close();
    }
    for (const auto& a : x.attempts) {
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
          .str("body", encode_event(ev));
      o.close();
    }
  }
  if (!created.empty())
    copy_children(w, created);
  if (!cps.empty())
    w.exec_prepared("insert_checkpoints", cps.done());
  if (!atts.empty())
    w.exec_prepared("insert_attempts", atts.done());
  if (!evs.empty())
    w.exec_prepared("insert_events", evs.done());
  if (!dead.empty())
    w.exec_prepared("dead_letters", dead.done());
}

struct shared_state {
  pg_store_options opts;
  caf::actor store;
  std::mutex mtx;
  std::condition_variable cv;
  std::deque<batch> queue;
  int idle = 0;
  bool stopping = false;
  std::vector<std::thread> writers;

  /// True if a writer would take a batch right now.
  bool writer_available() {
    std::lock_guard<std::mutex> guard{mtx};
    return idle > static_cast<int>(queue.size());
  }
};

void fail_all(std::vector<store_result>& out, std::size_t n, errc code,
              const std::string& msg) {
  out.assign(n, store_result{});
  for (auto& r : out) {
    r.code = static_cast<std::uint8_t>(code);
    r.message = msg;
  }
}

/// PostgreSQL refused the data itself (SQLSTATE class 22 or 23): the same
/// write can never succeed, so it is reported as such, not retried.
void unstorable(store_result& res, const std::exception& e,
                pg_store_stats& stats) {
  res.code = static_cast<std::uint8_t>(errc::unstorable);
  res.message = valid_text(e.what());
  ++stats.failures;
  spdlog::error("store: PostgreSQL refused a write's data: {}", e.what());
}

void writer_loop(std::shared_ptr<shared_state> sh) {
  auto& opts = sh->opts;
  auto& stats = *opts.stats;
  std::unique_ptr<pqxx::connection> conn;
  auto backoff = std::chrono::milliseconds{100};
  bool outage_logged = false;
  auto connect = [&]() -> bool {
    try {
      conn =
          std::make_unique<pqxx::connection>(with_connect_timeout(opts.pg.url));
      prepare(*conn);
      if (outage_logged)
        spdlog::info("store: connected to PostgreSQL again");
      outage_logged = false;
      backoff = std::chrono::milliseconds{100};
      stats.healthy = true;
      return true;
    } catch (const std::exception& e) {
      conn.reset();
      stats.healthy = false;
      if (!outage_logged) {
        spdlog::warn("store: PostgreSQL at {} unreachable: {}",
                     redact_url(opts.pg.url), e.what());
        outage_logged = true;
      }
      return false;
    }
  };
  for (;;) {
    batch b;
    {
      std::unique_lock<std::mutex> lock{sh->mtx};
      ++sh->idle;
      sh->cv.wait(lock, [&] { return sh->stopping || !sh->queue.empty(); });
      --sh->idle;
      if (sh->stopping && sh->queue.empty())
        return;
      b = std::move(sh->queue.front());
      sh->queue.pop_front();
    }
    std::vector<store_result> results;
    if (!conn && !connect()) {
      fail_all(results, b.requests.size(), errc::unavailable,
               "PostgreSQL unreachable");
      ++stats.failures;
      caf::anon_send(sh->store, batch_done_atom::value, b.id,
                     std::move(results));
      // Back off before the next attempt so an outage is not a busy loop.
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds{5000});
      continue;
    }
    auto t0 = std::chrono::steady_clock::now();
    try {
      pqxx::work w{*conn};
      run_batch(w, b.requests, results, opts);
      w.commit();
      ++stats.transactions;
    } catch (const pqxx::broken_connection& e) {
      conn.reset();
      stats.healthy = false;
      fail_all(results, b.requests.size(), errc::unavailable, e.what());
      ++stats.failures;
    } catch (const std::exception& e) {
      // One bad request must not fail its companions forever: run each on
      // its own so only the culprit gets the error.
      results.assign(b.requests.size(), store_result{});
      for (std::size_t i = 0; i < b.requests.size(); ++i) {
        std::vector<store_result> one;
        try {
          pqxx::work w{*conn};
          run_batch(w, {b.requests[i]}, one, opts);
          w.commit();
          ++stats.transactions;
          results[i] = std::move(one.at(0));
        } catch (const pqxx::broken_connection& e2) {
          conn.reset();
          results[i].code = static_cast<std::uint8_t>(errc::unavailable);
          results[i].message = e2.what();
          for (std::size_t k = i + 1; k < b.requests.size(); ++k) {
            results[k].code = static_cast<std::uint8_t>(errc::unavailable);
            results[k].message = e2.what();
          }
          break;
        } catch (const pqxx::data_exception& e2) {
          unstorable(results[i], e2, stats);
        } catch (const pqxx::integrity_constraint_violation& e2) {
          unstorable(results[i], e2, stats);
        } catch (const std::exception& e2) {
          results[i].code = static_cast<std::uint8_t>(errc::internal);
          results[i].message = e2.what();
          ++stats.failures;
          spdlog::error("store: request failed: {}", e2.what());
        }
      }
      (void)e;
    }
    auto took = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now() - t0)
                    .count();
    stats.commit_us += took;
    stats.commit_seconds.observe(static_cast<double>(took) / 1e6);
    stats.batch_sizes.observe(static_cast<double>(b.requests.size()));
    caf::anon_send(sh->store, batch_done_atom::value, b.id, std::move(results));
  }
}

struct store_state {
  std::shared_ptr<shared_state> shared;
  std::vector<store_request> pending;
  std::vector<caf::response_promise> pending_promises;
  std::unordered_map<std::uint64_t, std::vector<caf::response_promise>>
      in_flight;
  std::uint64_t next_batch = 1;
  bool flush_scheduled = false;

  static inline const char* name = "pg_store";
};

/// The store's interface plus the messages it sends itself (flush) and
/// gets from its writer threads (batch_done).
using pg_store_actor = store_actor::extend<
    caf::reacts_to<flush_atom>,
    caf::reacts_to<batch_done_atom, std::uint64_t, std::vector<store_result>>>;

using self_ptr = pg_store_actor::stateful_pointer<store_state>;

/// Hands pending requests to the writers if one can take them now, or if
/// enough are waiting. Otherwise they keep accumulating (group commit).
void try_flush(self_ptr self, bool force) {
  auto& st = self->state;
  auto& sh = *st.shared;
  auto max = static_cast<std::size_t>(sh.opts.pg.batch_max);
  while (!st.pending.empty() &&
         (force || st.pending.size() >= max || sh.writer_available())) {
    force = false;
    batch b;
    b.id = st.next_batch++;
    auto n = std::min(max, st.pending.size());
    b.requests.assign(std::make_move_iterator(st.pending.begin()),
                      std::make_move_iterator(st.pending.begin() + n));
    st.pending.erase(st.pending.begin(), st.pending.begin() + n);
    std::vector<caf::response_promise> ps(
        std::make_move_iterator(st.pending_promises.begin()),
        std::make_move_iterator(st.pending_promises.begin() + n));
    st.pending_promises.erase(st.pending_promises.begin(),
                              st.pending_promises.begin() + n);
    st.in_flight.emplace(b.id, std::move(ps));
    {
      std::lock_guard<std::mutex> guard{sh.mtx};
      sh.queue.push_back(std::move(b));
    }
    sh.cv.notify_one();
  }
  if (!st.pending.empty() && !st.flush_scheduled) {
    st.flush_scheduled = true;
    self->delayed_send(self, sh.opts.pg.batch_delay, flush_atom::value);
  }
}

void enqueue(self_ptr self, store_request req, caf::response_promise rp) {
  auto& st = self->state;
  ++st.shared->opts.stats->requests;
  st.pending.push_back(std::move(req));
  st.pending_promises.push_back(std::move(rp));
  try_flush(self, false);
}

pg_store_actor::behavior_type pg_store(self_ptr self, pg_store_options opts) {
  auto sh = std::make_shared<shared_state>();
  if (!opts.stats)
    opts.stats = std::make_shared<pg_store_stats>();
  sh->opts = std::move(opts);
  sh->store = caf::actor_cast<caf::actor>(self);
  self->state.shared = sh;
  auto n = std::max(1, sh->opts.pg.pool_size);
  for (int i = 0; i < n; ++i)
    sh->writers.emplace_back(writer_loop, sh);
  self->attach_functor([sh] {
    // Stop intake, let queued batches finish, join: no thread outlives
    // the store. (Their results go to a dead actor and are dropped.)
    {
      std::lock_guard<std::mutex> guard{sh->mtx};
      sh->stopping = true;
    }
    sh->cv.notify_all();
    for (auto& t : sh->writers)
      if (t.joinable())
        t.join();
    sh->store = nullptr;
  });
  return {
      [self](claim_atom, job_spec& spec) -> caf::result<job_snapshot> {
        auto rp = self->make_response_promise();
        store_request r;
        r.is_claim = true;
        r.spec = std::move(spec);
        enqueue(self, std::move(r), rp);
        return rp;
      },
      [self](job_write& w) -> caf::result<ok_atom> {
        auto rp = self->make_response_promise();
        store_request r;
        r.write = std::move(w);
        enqueue(self, std::move(r), rp);
        return rp;
      },
      [self](flush_atom) {
        self->state.flush_scheduled = false;
        try_flush(self, false);
      },
      [self](batch_done_atom, std::uint64_t id,
             std::vector<store_result>& results) {
        auto& st = self->state;
        auto i = st.in_flight.find(id);
        if (i == st.in_flight.end())
          return;
        auto promises = std::move(i->second);
        st.in_flight.erase(i);
        for (std::size_t k = 0; k < promises.size() && k < results.size();
             ++k) {
          auto& r = results[k];
          auto code = static_cast<errc>(r.code);
          if (code == errc::none) {
            // A claim answers with its snapshot, a write with ok.
            if (!r.snapshot.spec.job_id.empty())
              promises[k].deliver(std::move(r.snapshot));
            else
              promises[k].deliver(ok_atom::value);
          } else {
            if (code == errc::stale_epoch)
              ++st.shared->opts.stats->stale;
            promises[k].deliver(make_error(code, std::move(r.message)));
          }
        }
        // A writer is free again: what accumulated meanwhile goes now.
        try_flush(self, false);
      },
  };
}

} // namespace

store_actor spawn_pg_store(caf::actor_system& sys, pg_store_options opts) {
  return sys.spawn(pg_store, std::move(opts));
}

} // namespace troupe
