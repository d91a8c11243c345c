#include "runtime/node/job_scheduler.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/pg/cron_store.hpp"
#include "runtime/pg/schedule_store.hpp"
#include "runtime/pg/tenant_slots.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "actors/tenant_gate.hpp"
#include "messages/errc.hpp"
#include "messages/json_codec.hpp"

namespace troupe {

namespace {

using clock_type = std::chrono::steady_clock;

/// The slice the thread sleeps at most before it looks at `stopping_`.
constexpr duration_ms stop_check{200};

} // namespace

job_scheduler::job_scheduler(std::shared_ptr<nats_client> nats,
                             job_scheduler_options opts)
    : nats_(std::move(nats)), opts_(std::move(opts)),
      stats_(opts_.stats ? opts_.stats : std::make_shared<scheduler_stats>()),
      store_(std::make_unique<schedule_store>(opts_.pg_url, opts_.lease_owner)),
      lease_store_(
          std::make_unique<schedule_store>(opts_.pg_url, opts_.lease_owner)),
      cron_(std::make_unique<cron_store>(opts_.pg_url, opts_.node_id)),
      slots_(std::make_unique<tenant_slots>(opts_.pg_url, opts_.node_id)) {
  if (opts_.gate)
    opts_.gate->set_cluster_wide([this] { nudge(); });
}

job_scheduler::~job_scheduler() {
  stop();
}

caf::error job_scheduler::hold_lease() {
  if (auto err = lease_store_->renew_lease(opts_.lease))
    return err;
  ++stats_->renewed;
  return {};
}

void job_scheduler::start() {
  lease_thread_ = std::thread{[this] { run_leases(); }};
  thread_ = std::thread{[this] { run(); }};
}

void job_scheduler::stop() {
  stopping_ = true;
  nudge();
  bool started = lease_thread_.joinable();
  for (auto* t : {&thread_, &lease_thread_})
    if (t->joinable())
      t->join();
  // Whatever the node still holds goes to a live node at its next pass.
  if (started)
    if (auto err = lease_store_->release_lease())
      spdlog::warn("scheduler: {}", describe(err));
}

void job_scheduler::run() {
  while (!stopping_) {
    keep_schedules();
    if (publish_pass())
      continue; // a full batch: more are due now
    sleep_until_due();
  }
}

void job_scheduler::run_leases() {
  auto next = clock_type::now();
  auto count_at = clock_type::now();
  while (!stopping_) {
    if (clock_type::now() >= next) {
      next = clock_type::now() + opts_.lease / 4;
      keep_leases();
    }
    if (clock_type::now() >= count_at) {
      count_at = clock_type::now() + std::chrono::seconds{10};
      count_backlog();
    }
    keep_tenant_slots();
    std::unique_lock<std::mutex> lock{nudge_mtx_};
    nudge_cv_.wait_until(lock, std::min(next, clock_type::now() + stop_check),
                         [this] { return nudged_ || stopping_; });
    nudged_ = false;
  }
}

bool job_scheduler::actors_stalled() {
  bool stalled = opts_.actors_alive && !opts_.actors_alive();
  if (stalled && !stalled_)
    spdlog::error("scheduler: the node's actors stopped ticking; its lease "
                  "is left to lapse, so that live nodes take its jobs");
  else if (!stalled && stalled_)
    spdlog::info("scheduler: the node's actors tick again; its lease is "
                 "renewed again");
  stalled_ = stalled;
  return stalled;
}

void job_scheduler::count_backlog() {
  auto b = lease_store_->count_waiting();
  if (!b) {
    ++stats_->store_failures;
    return;
  }
  stats_->waiting = b->waiting;
  stats_->due = b->due;
  stats_->oldest_due_ms = b->oldest_due_ms;
}

void job_scheduler::nudge() {
  {
    std::lock_guard<std::mutex> guard{nudge_mtx_};
    nudged_ = true;
  }
  nudge_cv_.notify_one();
}

void job_scheduler::keep_tenant_slots() {
  if (!opts_.gate)
    return;
  for (auto& [tenant, want] : opts_.gate->demand()) {
    auto held =
        slots_->hold(tenant, opts_.gate->limit(tenant), want, opts_.lease);
    if (!held)
      ++stats_->store_failures;
    // Without the store, no new job of the tenant starts (its slots may
    // lapse to other nodes); running ones go on.
    opts_.gate->grant(tenant, held ? *held : 0);
  }
  // Jobs refused a slot ask again, so that the next demand counts them.
  opts_.gate->wake_all();
}

void job_scheduler::keep_leases() {
  if (actors_stalled()) {
    // Not renewed: the lease lapses and live nodes rescue the jobs.
  } else if (lease_store_->renew_lease(opts_.lease)) {
    ++stats_->store_failures;
  } else {
    ++stats_->renewed;
  }
  auto rescued = lease_store_->rescue_expired(opts_.batch);
  if (!rescued) {
    ++stats_->store_failures;
    return;
  }
  if (*rescued > 0) {
    stats_->rescued += static_cast<std::int64_t>(*rescued);
    spdlog::warn("scheduler: {} job(s) whose node stopped renewing its "
                 "lease are published again",
                 *rescued);
  }
}

void job_scheduler::keep_schedules() {
  if (!registered_) {
    auto err = cron_->register_schedules(opts_.schedules);
    if (err) {
      ++stats_->store_failures;
      return;
    }
    registered_ = true;
  }
  auto fired = cron_->fire_due();
  if (!fired) {
    ++stats_->store_failures;
    spdlog::warn("scheduler: {}", describe(fired.error()));
  } else {
    stats_->fired += static_cast<std::int64_t>(*fired);
  }
}

bool job_scheduler::publish_pass() {
  if (clock_type::now() < quiet_until_)
    return false;
  auto summary =
      store_->publish_due(opts_.batch, [this](const std::vector<due_job>& d) {
        return publish(d);
      });
  if (!summary) {
    ++stats_->store_failures;
    spdlog::warn("scheduler: {}", describe(summary.error()));
    quiet_until_ = clock_type::now() + std::chrono::seconds{1};
    return false;
  }
  stats_->published += static_cast<std::int64_t>(summary->published);
  for (auto lag : summary->lags_ms)
    stats_->lag_seconds.observe(static_cast<double>(lag) / 1000.0);
  // Jobs the stream did not take are due again 5 s later (schedule_store):
  // they do not hold up the ones behind them.
  return summary->published + summary->failed == opts_.batch;
}

/// A job with a priority above 0 goes to its pipeline's high band when the
/// pipeline has one (docs/wire-format.md, "Priorities").
std::string job_scheduler::subject_for(const due_job& d) {
  subjects subj{opts_.prefix};
  if (d.priority <= 0)
    return subj.jobs(d.pipeline);
  auto now = std::chrono::steady_clock::now();
  auto& band = bands_[d.pipeline];
  if (now - band.checked > std::chrono::seconds{30}) {
    // Unknown (the broker did not answer) keeps the last answer.
    if (auto exists = nats_->consumer_exists(opts_.stream,
                                             subj.consumer_high(d.pipeline)))
      band.exists = *exists;
    band.checked = now;
  }
  return band.exists ? subj.jobs_high(d.pipeline) : subj.jobs(d.pipeline);
}

/// Publishes the jobs as one batch; the stream's ack of each is what makes
/// it safe to mark its row `queued`.
std::vector<std::uint64_t>
job_scheduler::publish(const std::vector<due_job>& due) {
  std::vector<js_outgoing> out;
  out.reserve(due.size());
  for (const auto& d : due) {
    submission body;
    body.tenant = d.tenant;
    body.correlation_id = d.correlation_id;
    body.priority = d.priority;
    auto gen = std::to_string(d.gen);
    out.push_back({subject_for(d),
                   encode_submission(body),
                   d.job_id + "#g" + gen,
                   {{"Troupe-Job-Id", d.job_id},
                    {"Troupe-Gen", gen},
                    {"Troupe-Wake", d.wake}}});
  }
  // Well within a lease period: the rows stay locked meanwhile, and claims
  // of them wait.
  auto wait = std::clamp<std::int64_t>(opts_.lease.count() / 4, 500, 5000);
  auto sent = nats_->js_publish_batch(out, wait);
  auto failed = std::count(sent.begin(), sent.end(), std::uint64_t{0});
  if (failed > 0) {
    stats_->publish_failures += failed;
    spdlog::warn("scheduler: {} of {} due job(s) not published (they stay "
                 "due; is JetStream up, and a stream for each pipeline?)",
                 failed, due.size());
  }
  return sent;
}

void job_scheduler::sleep_until_due() {
  auto wait = opts_.poll;
  if (clock_type::now() < quiet_until_)
    wait = std::chrono::duration_cast<duration_ms>(quiet_until_ -
                                                   clock_type::now());
  else if (auto next = store_->next_due(); next && *next)
    // Due now but locked by another node's pass: look again shortly.
    wait = std::min(wait, std::max(**next, duration_ms{10}));
  if (auto slot = cron_->next_slot(); slot && *slot)
    wait = std::min(wait, std::max(**slot, duration_ms{10}));
  auto deadline = clock_type::now() + wait;
  while (!stopping_) {
    auto left =
        std::chrono::duration_cast<duration_ms>(deadline - clock_type::now());
    if (left <= duration_ms{0})
      return;
    auto notified = store_->wait_for_due(std::min(left, stop_check));
    if (!notified) {
      // The store is away: wait out the slice rather than spin.
      std::this_thread::sleep_for(std::min(left, stop_check));
      continue;
    }
    if (*notified)
      return;
  }
}

} // namespace troupe
