#include "runtime/pg/pg_store.hpp"
#include "runtime/common/latency_probe.hpp"
#include "runtime/pg/pg_store_batch.hpp"
#include "runtime/pg/pg_store_sql.hpp"
#include "runtime/pg/pg_url.hpp"

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
#include "runtime/common/redact.hpp"

namespace troupe {

namespace {

using namespace pg_sql;

using json = nlohmann::json;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using batch_done_atom = caf::atom_constant<caf::atom("batch_done")>;

struct batch {
  std::uint64_t id = 0;
  std::vector<store_request> requests;
};

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

/// One writer thread: takes batches from the queue and commits each in one
/// transaction on its own connection, reconnecting with backoff.
class store_writer {
public:
  explicit store_writer(std::shared_ptr<shared_state> sh)
      : sh_(std::move(sh)), opts_(sh_->opts), stats_(*opts_.stats) {}

  void run() {
    batch b;
    while (next(b)) {
      if (!conn_ && !connect()) {
        fail_unreachable(b);
        continue;
      }
      auto t0 = std::chrono::steady_clock::now();
      mark_all(b, "store.begun");
      auto results = commit(b);
      mark_all(b, "store.committed");
      observe(b, t0);
      caf::anon_send(sh_->store, batch_done_atom::value, b.id,
                     std::move(results));
    }
  }

private:
  static void mark_all(const batch& b, const char* point) {
    if (latency_probe::enabled())
      for (const auto& r : b.requests)
        latency_probe::mark(r.is_claim ? r.spec.job_id : r.write.job_id, point);
  }

  /// Waits for a batch; false once stopping with nothing left.
  bool next(batch& b) {
    std::unique_lock<std::mutex> lock{sh_->mtx};
    ++sh_->idle;
    auto ready = [&] { return sh_->stopping || !sh_->queue.empty(); };
    // A writer that lost its connection keeps trying to get it back while
    // idle: a node whose store is unhealthy stops fetching, so no batch
    // would come to find PostgreSQL back (chaos seed 1).
    while (!conn_ && !stats_.healthy &&
           !sh_->cv.wait_for(lock, backoff_, ready)) {
      lock.unlock();
      if (!connect())
        backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds{5000});
      lock.lock();
    }
    sh_->cv.wait(lock, ready);
    --sh_->idle;
    if (sh_->stopping && sh_->queue.empty())
      return false;
    b = std::move(sh_->queue.front());
    sh_->queue.pop_front();
    return true;
  }

  bool connect() {
    try {
      conn_ = std::make_unique<pqxx::connection>(
          with_connect_timeout(opts_.pg.url));
      prepare_store_statements(*conn_);
      if (outage_logged_)
        spdlog::info("store: connected to PostgreSQL again");
      outage_logged_ = false;
      backoff_ = std::chrono::milliseconds{100};
      stats_.healthy = true;
      return true;
    } catch (const std::exception& e) {
      conn_.reset();
      stats_.healthy = false;
      if (!outage_logged_) {
        spdlog::warn("store: PostgreSQL at {} unreachable: {}",
                     redact_url(opts_.pg.url), e.what());
        outage_logged_ = true;
      }
      return false;
    }
  }

  void fail_unreachable(const batch& b) {
    std::vector<store_result> results;
    fail_all(results, b.requests.size(), errc::unavailable,
             "PostgreSQL unreachable");
    ++stats_.failures;
    caf::anon_send(sh_->store, batch_done_atom::value, b.id,
                   std::move(results));
    // Back off before the next attempt so an outage is not a busy loop.
    std::this_thread::sleep_for(backoff_);
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds{5000});
  }

  std::vector<store_result> commit(const batch& b) {
    std::vector<store_result> results;
    try {
      pqxx::work w{*conn_};
      run_batch(w, b.requests, results, opts_);
      w.commit();
      ++stats_.transactions;
      stats_.healthy = true; // another writer may have seen it fail
    } catch (const pqxx::broken_connection& e) {
      conn_.reset();
      stats_.healthy = false;
      fail_all(results, b.requests.size(), errc::unavailable, e.what());
      ++stats_.failures;
    } catch (const std::exception&) {
      // One bad request must not fail its companions forever: run each on
      // its own so only the culprit gets the error.
      results = commit_one_by_one(b);
    }
    return results;
  }

  std::vector<store_result> commit_one_by_one(const batch& b) {
    std::vector<store_result> results(b.requests.size());
    for (std::size_t i = 0; i < b.requests.size(); ++i) {
      try {
        std::vector<store_result> one;
        pqxx::work w{*conn_};
        run_batch(w, {b.requests[i]}, one, opts_);
        w.commit();
        ++stats_.transactions;
        results[i] = std::move(one.at(0));
      } catch (const pqxx::broken_connection& e) {
        conn_.reset();
        for (std::size_t k = i; k < b.requests.size(); ++k) {
          results[k].code = static_cast<std::uint8_t>(errc::unavailable);
          results[k].message = e.what();
        }
        break;
      } catch (const pqxx::data_exception& e) {
        unstorable(results[i], e, stats_);
      } catch (const pqxx::integrity_constraint_violation& e) {
        unstorable(results[i], e, stats_);
      } catch (const std::exception& e) {
        results[i].code = static_cast<std::uint8_t>(errc::internal);
        results[i].message = e.what();
        ++stats_.failures;
        spdlog::error("store: request failed: {}", e.what());
      }
    }
    return results;
  }

  void observe(const batch& b, std::chrono::steady_clock::time_point t0) {
    auto took = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now() - t0)
                    .count();
    stats_.commit_us += took;
    stats_.commit_seconds.observe(static_cast<double>(took) / 1e6);
    stats_.batch_sizes.observe(static_cast<double>(b.requests.size()));
  }

  std::shared_ptr<shared_state> sh_;
  const pg_store_options& opts_;
  pg_store_stats& stats_;
  std::unique_ptr<pqxx::connection> conn_;
  std::chrono::milliseconds backoff_{100};
  bool outage_logged_ = false;
};

void writer_loop(std::shared_ptr<shared_state> sh) {
  store_writer{std::move(sh)}.run();
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
        latency_probe::mark(w.job_id, "store.received");
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
