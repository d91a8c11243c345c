#include "runtime/node/jetstream_intake.hpp"
#include "runtime/common/latency_probe.hpp"
#include "runtime/nats/delivery.hpp"
#include "runtime/nats/nats_subscription.hpp"
#include "runtime/node/consumer_mender.hpp"
#include "runtime/pg/job_presence.hpp"
#include "runtime/pg/tenant_rates.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/atoms.hpp"
#include "actors/delivery_verdict.hpp"
#include "messages/errc.hpp"
#include "messages/json_text.hpp"

namespace troupe {

using progress_atom = caf::atom_constant<caf::atom("progress")>;

struct jetstream_intake::shared_state {
  std::shared_ptr<nats_client> nats;
  nats_config ncfg;
  std::string pipeline;
  std::string subject; ///< the pipeline's subject, its consumer's filter
  /// The high-priority band (`priorities`): drained before `consumer`.
  bool has_high = false;
  std::string high_subject;
  js_pull_consumer high;
  int max_in_flight = 100;
  input_limits limits;
  caf::actor supervisor;
  js_pull_consumer consumer;
  /// Makes the consumers again if the broker loses them.
  std::unique_ptr<consumer_mender> mender;
  std::shared_ptr<job_presence> presence;
  /// Tenants' rates across the cluster (null: not counted here).
  std::shared_ptr<tenant_rates> rates;
  tenants_config tenants;
  /// Jobs held by all of the node's intakes, and their cap (0: none).
  std::shared_ptr<std::atomic<std::int64_t>> node_held =
      std::make_shared<std::atomic<std::int64_t>>(0);
  std::int64_t node_max = 0;

  /// Free slots of this intake within the node's budget.
  int credit() const {
    auto own = max_in_flight - counters->in_flight;
    if (node_max > 0)
      own = std::min<std::int64_t>(own, node_max - *node_held);
    return static_cast<int>(std::max<std::int64_t>(own, 0));
  }

  /// Takes up to `want` slots of the node's budget in one step: two
  /// intakes that fetched at once must not both spend the same free slots
  /// (each admitted message then holds one of them until it is released).
  int reserve_node_slots(std::size_t wanted) {
    auto want = static_cast<std::int64_t>(wanted);
    auto cur = node_held->load();
    for (;;) {
      auto n =
          node_max > 0 ? std::min<std::int64_t>(want, node_max - cur) : want;
      if (n <= 0)
        return 0;
      if (node_held->compare_exchange_weak(cur, cur + n))
        return static_cast<int>(n);
    }
  }

  std::mutex mtx;
  std::condition_variable cv;
  std::unordered_map<std::uint64_t, nats_msg> held;
  std::uint64_t next_delivery = 1;
  bool paused = false;
  bool stopping = false;
  std::shared_ptr<intake_counters> counters =
      std::make_shared<intake_counters>();

  /// Takes a held message out of the table (nullopt if unknown).
  std::optional<nats_msg> take(std::uint64_t delivery) {
    std::lock_guard<std::mutex> guard{mtx};
    auto i = held.find(delivery);
    if (i == held.end())
      return std::nullopt;
    std::optional<nats_msg> m{std::move(i->second)};
    held.erase(i);
    return m;
  }

  void release_slot() {
    --counters->in_flight;
    --*node_held;
    cv.notify_all();
  }
};

namespace {

using state_ptr = std::shared_ptr<jetstream_intake::shared_state>;

/// Turns a delivered message into a job spec (runtime/nats/delivery.hpp).
/// `rated` says whether the job must take a token from its tenant's rate:
/// a client's first delivery that the submit API did not admit already.
job_spec to_spec(const state_ptr& st, const nats_msg& m, bool& rated) {
  auto d = read_delivery(m.raw());
  auto spec = decode_delivery(d, st->pipeline, st->limits, now_ms(), nullptr);
  if (!spec.invalid_reason.empty())
    ++st->counters->invalid;
  rated = st->rates && spec.invalid_reason.empty() && d.num_delivered == 1 &&
          spec.gen == 0 && spec.replay_life == 0 && !d.rate_admitted &&
          st->tenants.of(spec.tenant).rate_per_s > 0;
  return spec;
}

caf::behavior intake_actor(caf::event_based_actor* self, state_ptr st,
                           std::chrono::milliseconds progress_every) {
  self->delayed_send(self, progress_every, progress_atom::value);
  return {
      [st](finished_atom, std::uint64_t delivery, job_result& res) {
        auto m = st->take(delivery);
        if (!m)
          return;
        auto verdict = verdict_for(res);
        if (verdict.action == delivery_action::replace_held) {
          // The same message as a delivery still held: keep the newest
          // handle under the held number (acks and progress go by stream
          // sequence), and free this one's slot without acking anything.
          std::lock_guard<std::mutex> guard{st->mtx};
          if (auto i = st->held.find(res.same_as); i != st->held.end())
            std::swap(i->second, *m);
        } else if (verdict.dropped) {
          // Nothing this delivery says can be done or recorded: keeping it
          // would only loop. Dropped loudly; the job (if any) is untouched.
          spdlog::warn("intake {}: dropped a message for job '{}': {}",
                       st->pipeline, res.job_id, res.error);
          if (verdict.action == delivery_action::ack)
            m->ack();
          else
            m->term();
          ++st->counters->invalid;
        } else if (verdict.action == delivery_action::leave) {
          // Another node's delivery of this message is the live one.
        } else if (verdict.action == delivery_action::nak) {
          // Not started (its tenant is at its limit here) or given up: back
          // to the stream for a while, so it holds no slot meanwhile.
          m->nak(verdict.nak_delay_ms);
          ++st->counters->naked;
        } else {
          // Asynchronous ack: the terminal state is already committed, and
          // a lost ack only causes a redelivery that the store skips.
          m->ack();
          ++st->counters->acked;
        }
        st->release_slot();
      },
      [self, st, progress_every](progress_atom) {
        {
          std::lock_guard<std::mutex> guard{st->mtx};
          for (auto& kv : st->held)
            kv.second.in_progress();
        }
        self->delayed_send(self, progress_every, progress_atom::value);
      },
  };
}

} // namespace

jetstream_intake::jetstream_intake(caf::actor_system& sys,
                                   std::shared_ptr<nats_client> nats,
                                   nats_config ncfg, std::string pipeline,
                                   int max_in_flight, input_limits limits)
    : state_(std::make_shared<shared_state>()) {
  counters_ = state_->counters;
  state_->nats = std::move(nats);
  state_->ncfg = std::move(ncfg);
  state_->pipeline = std::move(pipeline);
  state_->max_in_flight = max_in_flight;
  state_->limits = limits;
  // In-progress acks at a third of AckWait: two may be lost before the
  // broker redelivers a job that is still running.
  auto every = std::max<std::chrono::milliseconds>(
      std::chrono::milliseconds{100}, state_->ncfg.ack_wait / 3);
  actor_ = sys.spawn(intake_actor, state_, every);
}

jetstream_intake::~jetstream_intake() {
  stop();
  caf::anon_send_exit(actor_, caf::exit_reason::user_shutdown);
}

caf::error jetstream_intake::start(caf::actor supervisor) {
  subjects subj{state_->ncfg.prefix};
  auto durable = subj.consumer(state_->pipeline);
  auto filter = subj.jobs(state_->pipeline);
  state_->subject = filter;
  auto consumer = js_pull_consumer::bind(*state_->nats, state_->ncfg.stream,
                                         filter, durable, true);
  if (!consumer)
    return consumer.error();
  state_->consumer = std::move(*consumer);
  if (state_->has_high) {
    state_->high_subject = subj.jobs_high(state_->pipeline);
    auto high = js_pull_consumer::bind(
        *state_->nats, state_->ncfg.stream, state_->high_subject,
        subj.consumer_high(state_->pipeline), true);
    if (!high)
      return high.error();
    state_->high = std::move(*high);
  }
  state_->mender = std::make_unique<consumer_mender>(
      state_->nats, state_->ncfg, state_->pipeline, state_->max_in_flight,
      state_->has_high);
  state_->supervisor = std::move(supervisor);
  thread_ = std::thread{[this] { fetch_loop(); }};
  return caf::none;
}

void jetstream_intake::pause() {
  std::lock_guard<std::mutex> guard{state_->mtx};
  state_->paused = true;
}

bool jetstream_intake::paused() const {
  std::lock_guard<std::mutex> guard{state_->mtx};
  return state_->paused;
}

void jetstream_intake::resume() {
  {
    std::lock_guard<std::mutex> guard{state_->mtx};
    state_->paused = false;
  }
  state_->cv.notify_all();
}

void jetstream_intake::stop() {
  {
    std::lock_guard<std::mutex> guard{state_->mtx};
    if (state_->stopping && !thread_.joinable())
      return;
    state_->stopping = true;
  }
  state_->cv.notify_all();
  if (thread_.joinable())
    thread_.join();
  std::unordered_map<std::uint64_t, nats_msg> rest;
  {
    std::lock_guard<std::mutex> guard{state_->mtx};
    rest.swap(state_->held);
  }
  // Give the unfinished jobs back at once: other nodes resume them from
  // their checkpoints instead of waiting for AckWait.
  for (auto& kv : rest) {
    kv.second.nak();
    ++state_->counters->naked;
  }
  state_->consumer.close();
  state_->high.close();
}

namespace {

/// A message of another pipeline's subject, delivered by this pipeline's
/// consumer: the broker's mistake, never this pipeline's job. Seen from
/// nats-server 2.9.10 after a replica restarted from SIGKILL and reset its
/// stream state (docs/reliability.md, chaos seed 4): run here, it would
/// have run this pipeline's stages on another pipeline's job; acked as a
/// conflict, it lost the job. It goes back to the stream instead.
bool misdelivered(jetstream_intake::shared_state& st, nats_msg& m) {
  const char* subject = natsMsg_GetSubject(m.raw());
  if (subject == nullptr || subject == st.subject ||
      (st.has_high && subject == st.high_subject))
    return false;
  spdlog::warn("intake {}: consumer delivered a message of '{}'; handed "
               "back to the stream",
               st.pipeline, subject);
  m.nak(5000);
  ++st.counters->naked;
  const char* reply = natsMsg_GetReply(m.raw());
  auto durable = consumer_of_ack(reply ? reply : "");
  if (st.mender && !durable.empty())
    st.mender->misdelivered(durable);
  return true;
}

/// The fetched messages that may run now, with their specs. Those fetched
/// while the intake was paused go back untouched; so do those beyond the
/// node's budget (node.max_in_flight): two intakes that fetched at once
/// may have counted the same free slots, and only one gets them. Slots are
/// taken after the fetch, not before it, so that an idle pipeline's long
/// poll holds none.
std::vector<std::pair<nats_msg, job_spec>>
admit(const state_ptr& sp, std::vector<nats_msg>& fetched,
      std::vector<std::size_t>& rated_jobs) {
  auto& st = *sp;
  bool paused_now;
  {
    std::lock_guard<std::mutex> guard{st.mtx};
    paused_now = st.paused;
  }
  auto granted = paused_now ? 0 : st.reserve_node_slots(fetched.size());
  std::vector<std::pair<nats_msg, job_spec>> batch;
  batch.reserve(static_cast<std::size_t>(granted));
  for (auto& m : fetched) {
    if (paused_now) {
      // Paused (pipeline paused, drain, or degraded) while the fetch was
      // under way: hand it back untouched rather than start it. No delay:
      // paused intakes issue no pull requests, so it waits in the stream
      // until an intake fetches again.
      m.nak();
      continue;
    }
    if (misdelivered(st, m))
      continue;
    if (static_cast<int>(batch.size()) >= granted) {
      m.nak(200); // over the node's budget: back in a moment
      ++st.counters->naked;
      continue;
    }
    // A job due later (job_spec::run_at_ms) goes through a slot briefly:
    // its actor hands it to the store as `scheduled`, and the message is
    // acked. The scheduler publishes it again when it is due.
    bool rated = false;
    auto spec = to_spec(sp, m, rated);
    if (rated)
      rated_jobs.push_back(batch.size());
    batch.emplace_back(std::move(m), std::move(spec));
  }
  if (static_cast<int>(batch.size()) < granted)
    *st.node_held -= granted - static_cast<std::int64_t>(batch.size());
  return batch;
}

/// Direct publishes of tenants with a `rate` take their tokens from the
/// cluster's bucket, a tenant's jobs of the batch at once; a job over the
/// rate waits in the store until its token is paid for (its actor hands it
/// to the store as `scheduled`). Nothing is refused: a publisher that
/// cannot be told to retry must not lose its job. With the store away the
/// jobs run (counted nowhere) rather than wait for it.
void take_rates(jetstream_intake::shared_state& st,
                std::vector<std::pair<nats_msg, job_spec>>& batch,
                const std::vector<std::size_t>& rated) {
  std::map<std::string, std::vector<std::size_t>> by_tenant;
  for (auto i : rated)
    by_tenant[batch[i].second.tenant].push_back(i);
  auto now = now_ms();
  for (auto& [tenant, jobs] : by_tenant) {
    const auto& lim = st.tenants.of(tenant);
    auto t = st.rates->take(tenant, lim, static_cast<int>(jobs.size()), true);
    if (!t) {
      spdlog::warn("intake {}: tenant '{}' runs over its rate unchecked: {}",
                   st.pipeline, tenant, describe(t.error()));
      continue;
    }
    auto waits =
        reserved_waits(t->held, static_cast<int>(jobs.size()), lim.rate_per_s);
    for (std::size_t k = 0; k < jobs.size(); ++k)
      if (waits[k] > 0) {
        auto& spec = batch[jobs[k]].second;
        spec.run_at_ms = std::max(spec.run_at_ms, now + waits[k]);
      }
  }
}

/// Fresh deliveries whose job exists already (a tombstone, an id submitted
/// again after the duplicate window) must not run before the store has
/// decided: they claim first. One query per fetched batch.
void mark_known_jobs(jetstream_intake::shared_state& st,
                     std::vector<std::pair<nats_msg, job_spec>>& batch) {
  std::vector<std::string> ids;
  for (auto& [m, spec] : batch)
    if (spec.fresh)
      ids.push_back(spec.job_id);
  if (ids.empty())
    return;
  auto known = st.presence ? st.presence->existing(ids) : std::nullopt;
  for (auto& [m, spec] : batch)
    if (spec.fresh && (!known || known->count(spec.job_id)))
      spec.fresh = false;
}

} // namespace

void jetstream_intake::share_node_budget(
    std::shared_ptr<std::atomic<std::int64_t>> held, std::int64_t max) {
  state_->node_held = std::move(held);
  state_->node_max = max;
}

void jetstream_intake::add_high_band() {
  state_->has_high = true;
}

void jetstream_intake::set_tenant_rates(std::shared_ptr<tenant_rates> rates,
                                        tenants_config tenants) {
  state_->rates = std::move(rates);
  state_->tenants = std::move(tenants);
}

void jetstream_intake::set_presence(std::shared_ptr<job_presence> presence) {
  state_->presence = std::move(presence);
}

namespace {

/// Up to `credit` messages: the high band's first (what it holds now),
/// then the normal band's. With a high band the normal fetch waits 100 ms,
/// not 500, so that a high job arriving at an idle pipeline waits at most
/// that long.
caf::expected<std::vector<nats_msg>>
fetch_bands(jetstream_intake::shared_state& st, int credit) {
  if (!st.has_high)
    return st.consumer.fetch(credit, 500);
  auto high = st.high.fetch_now(credit);
  if (!high || !high->empty())
    return high;
  return st.consumer.fetch(credit, 100);
}

} // namespace

void jetstream_intake::fetch_loop() {
  auto& st = *state_;
  auto last_error_log = std::chrono::steady_clock::time_point{};
  for (;;) {
    int credit = 0;
    {
      std::unique_lock<std::mutex> lock{st.mtx};
      // Another intake freeing a node-wide slot does not notify this one:
      // the bounded wait notices it.
      st.cv.wait_for(lock, std::chrono::milliseconds{200}, [&] {
        return st.stopping || (!st.paused && st.credit() > 0);
      });
      if (st.stopping)
        return;
      if (st.paused || st.credit() <= 0)
        continue;
      credit = std::min(st.credit(), 256);
    }
    auto fetched = fetch_bands(st, credit);
    auto fetched_us = latency_probe::enabled() ? latency_probe::now_us() : 0;
    if (!fetched) {
      auto now = std::chrono::steady_clock::now();
      if (now - last_error_log > std::chrono::seconds{10}) {
        spdlog::warn("intake {}: {}", st.pipeline, describe(fetched.error()));
        last_error_log = now;
      }
      st.mender->after_fetch(true);
      std::this_thread::sleep_for(std::chrono::milliseconds{250});
      continue;
    }
    st.mender->after_fetch(false);
    if (fetched->empty())
      continue;
    std::vector<std::size_t> rated;
    auto batch = admit(state_, *fetched, rated);
    if (!rated.empty())
      take_rates(st, batch, rated);
    mark_known_jobs(st, batch);
    if (latency_probe::enabled())
      for (auto& [m, spec] : batch) {
        latency_probe::mark_at(spec.job_id, "intake.fetched", fetched_us);
        latency_probe::mark(spec.job_id, "intake.checked");
      }
    for (auto& [m, spec] : batch) {
      std::uint64_t delivery;
      {
        std::lock_guard<std::mutex> guard{st.mtx};
        delivery = st.next_delivery++;
        st.held.emplace(delivery, std::move(m));
      }
      ++st.counters->in_flight;
      ++st.counters->fetched;
      caf::anon_send(st.supervisor, submit_atom::value, std::move(spec),
                     delivery);
    }
  }
}

} // namespace troupe
