#include "runtime/node/job_scheduler.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/pg/cron_store.hpp"
#include "runtime/pg/schedule_store.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

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
      store_(std::make_unique<schedule_store>(opts_.pg_url, opts_.node_id)),
      cron_(std::make_unique<cron_store>(opts_.pg_url, opts_.node_id)) {}

job_scheduler::~job_scheduler() {
  stop();
}

void job_scheduler::start() {
  thread_ = std::thread{[this] { run(); }};
}

void job_scheduler::stop() {
  stopping_ = true;
  if (thread_.joinable())
    thread_.join();
}

void job_scheduler::run() {
  auto renew_at = clock_type::now();
  while (!stopping_) {
    keep_leases(renew_at);
    keep_schedules();
    if (publish_pass())
      continue; // a full batch: more are due now
    sleep_until_due(renew_at);
  }
}

void job_scheduler::keep_leases(clock_type::time_point& next) {
  auto now = clock_type::now();
  if (now < next)
    return;
  next = now + opts_.lease / 4;
  if (auto n = store_->renew_leases(opts_.lease))
    stats_->renewed += static_cast<std::int64_t>(*n);
  else
    ++stats_->store_failures;
  auto rescued = store_->rescue_expired(opts_.batch);
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
  if (summary->failed > 0) {
    // NATS is down or refuses: the jobs stay due; look again in a second.
    quiet_until_ = clock_type::now() + std::chrono::seconds{1};
    return false;
  }
  return summary->published == opts_.batch;
}

/// Publishes each job (synchronously: the stream's ack is what makes it
/// safe to mark the row `queued`), stopping at the first failure.
std::size_t job_scheduler::publish(const std::vector<due_job>& due) {
  std::size_t n = 0;
  for (const auto& d : due) {
    if (stopping_)
      break;
    submission body;
    body.tenant = d.tenant;
    body.correlation_id = d.correlation_id;
    body.priority = d.priority;
    auto gen = std::to_string(d.gen);
    auto sent = nats_->js_publish_headers(opts_.prefix + ".jobs." + d.pipeline,
                                          encode_submission(body),
                                          d.job_id + "#g" + gen,
                                          {{"Troupe-Job-Id", d.job_id},
                                           {"Troupe-Gen", gen},
                                           {"Troupe-Wake", d.wake}},
                                          2000);
    if (!sent) {
      ++stats_->publish_failures;
      spdlog::warn("scheduler: job '{}' stays due: {}", d.job_id,
                   describe(sent.error()));
      break;
    }
    ++n;
  }
  return n;
}

void job_scheduler::sleep_until_due(clock_type::time_point renew_at) {
  auto wait = opts_.poll;
  if (clock_type::now() < quiet_until_)
    wait = std::chrono::duration_cast<duration_ms>(quiet_until_ -
                                                   clock_type::now());
  else if (auto next = store_->next_due(); next && *next)
    // Due now but locked by another node's pass: look again shortly.
    wait = std::min(wait, std::max(**next, duration_ms{10}));
  if (auto slot = cron_->next_slot(); slot && *slot)
    wait = std::min(wait, std::max(**slot, duration_ms{10}));
  auto deadline = std::min(clock_type::now() + wait, renew_at);
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
