#include "runtime/node/unrouted_sweeper.hpp"
#include "runtime/nats/delivery.hpp"
#include "runtime/nats/nats_subscription.hpp"

#include <condition_variable>
#include <functional>
#include <mutex>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/atoms.hpp"
#include "actors/pipeline_supervisor.hpp"
#include "config/config_loader.hpp"
#include "messages/errc.hpp"

namespace troupe {

struct unrouted_sweeper::impl {
  caf::actor_system* sys = nullptr;
  std::shared_ptr<nats_client> nats;
  nats_config ncfg;
  std::shared_ptr<const job_deps> deps;
  input_limits limits;
  std::set<std::string> own;
  /// Subjects unrouted in the last sweep: swept if they still are.
  std::set<std::string> suspected;
  std::mutex mtx;
  std::condition_variable cv;
  bool stopping = false;
};

unrouted_sweeper::unrouted_sweeper(caf::actor_system& sys,
                                   std::shared_ptr<nats_client> nats,
                                   nats_config ncfg,
                                   std::shared_ptr<const job_deps> deps,
                                   input_limits limits,
                                   std::set<std::string> own)
    : impl_(std::make_shared<impl>()) {
  impl_->own = std::move(own);
  impl_->sys = &sys;
  impl_->nats = std::move(nats);
  impl_->ncfg = std::move(ncfg);
  impl_->deps = std::move(deps);
  impl_->limits = limits;
}

unrouted_sweeper::~unrouted_sweeper() {
  stop();
}

void unrouted_sweeper::start() {
  if (impl_->ncfg.unrouted_sweep.count() <= 0)
    return;
  thread_ = std::thread{[this] {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock{impl_->mtx};
        if (impl_->cv.wait_for(lock, impl_->ncfg.unrouted_sweep,
                               [this] { return impl_->stopping; }))
          return;
      }
      sweep_once();
    }
  }};
}

void unrouted_sweeper::stop() {
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (thread_.joinable())
    thread_.join();
}

namespace {

using sweeper_impl = unrouted_sweeper::impl;

/// Whether a consumer takes `<prefix>.jobs.<token>`: a pipeline's, or the
/// high-priority band's of a pipeline that has one (`<pipeline>.high`).
/// True when the broker cannot tell: only a sure "no" sweeps.
bool routed(const sweeper_impl& im, const subjects& subj,
            const std::string& token) {
  if (im.own.count(token) > 0)
    return true;
  auto exists = [&](const std::string& consumer) {
    auto e = im.nats->consumer_exists(im.ncfg.stream, consumer);
    return !e || *e;
  };
  if (is_subject_token(token))
    return exists(subj.consumer(token));
  auto dot = token.find('.');
  auto pipeline = token.substr(0, dot);
  return token.substr(dot + 1) == "high" && is_subject_token(pipeline) &&
         exists(subj.consumer_high(pipeline));
}

/// Subjects under `<prefix>.jobs.` holding messages that no pipeline's
/// consumer will take: unrouted now and in the sweep before.
std::vector<std::string> unrouted_subjects(sweeper_impl& im) {
  subjects subj{im.ncfg.prefix};
  auto jobs_prefix = im.ncfg.prefix + ".jobs.";
  std::vector<std::string> unrouted;
  auto held = im.nats->stream_subjects(im.ncfg.stream, subj.jobs_wildcard());
  if (!held)
    return unrouted;
  std::set<std::string> now;
  for (auto& [subject, msgs] : *held) {
    if (subject.rfind(jobs_prefix, 0) != 0)
      continue;
    auto token = subject.substr(jobs_prefix.size());
    if (routed(im, subj, token))
      continue;
    now.insert(subject);
    if (im.suspected.count(subject) > 0)
      unrouted.push_back(subject);
  }
  im.suspected = std::move(now);
  return unrouted;
}

/// Records one message as a job dead-lettered for its unknown pipeline
/// (through `sup`, waiting for the result); true once recorded.
bool record_unrouted(const sweeper_impl& im, caf::scoped_actor& self,
                     const caf::actor& sup, const nats_msg& m,
                     const std::string& subject, const std::string& token) {
  // Decoded like any delivery (runtime/nats/delivery.hpp): its own id if its
  // headers are malformed, a storable copy of what was sent.
  auto spec = decode_delivery(read_delivery(m.raw()),
                              is_subject_token(token) ? token : "invalid",
                              im.limits, now_ms(), nullptr);
  spec.invalid_code = "unknown_pipeline";
  spec.invalid_reason = "no node runs pipeline '" + token +
                        "' (message published on " + subject + ")";
  self->send(sup, submit_atom::value, spec, std::uint64_t{0});
  bool recorded = false;
  self->receive([&](finished_atom, std::uint64_t,
                    job_result& r) { recorded = !gave_up(r.outcome); },
                caf::after(std::chrono::seconds{30}) >> [] {});
  return recorded;
}

/// Drains one subject through a temporary consumer; the messages recorded.
int sweep_subject(const sweeper_impl& im, caf::scoped_actor& self,
                  const caf::actor& sup, const std::string& subject) {
  auto token = subject.substr(im.ncfg.prefix.size() + 6); // "<prefix>.jobs."
  auto durable =
      "troupe_unrouted_" + std::to_string(std::hash<std::string>{}(subject));
  auto consumer =
      js_pull_consumer::bind(*im.nats, im.ncfg.stream, subject, durable, false);
  if (!consumer)
    return 0;
  int here = 0;
  for (;;) {
    auto fetched = consumer->fetch(64, 500);
    if (!fetched || fetched->empty())
      break;
    for (auto& m : *fetched)
      if (record_unrouted(im, self, sup, m, subject, token)) {
        m.ack_sync();
        ++here;
      }
  }
  consumer->close();
  // Never leave this consumer behind: a work-queue stream allows one
  // consumer per subject, and a node that later runs the pipeline needs it.
  im.nats->delete_consumer(im.ncfg.stream, durable);
  if (here > 0)
    spdlog::warn("dead-lettered {} message(s) published on {}: no node runs "
                 "pipeline '{}'",
                 here, subject, token);
  return here;
}

} // namespace

int unrouted_sweeper::sweep_once() {
  auto& im = *impl_;
  auto unrouted = unrouted_subjects(im);
  if (unrouted.empty())
    return 0;
  // Jobs run through a supervisor of a pipeline without stages: claiming
  // records them, and their invalid_reason dead-letters them at once.
  pipeline_config pc;
  pc.name = "(unrouted)";
  pc.max_in_flight = 64;
  auto def = std::make_shared<pipeline_def>();
  def->config = pc;
  caf::scoped_actor self{*im.sys};
  supervisor_deps sd;
  sd.job = im.deps;
  sd.intake = caf::actor_cast<caf::actor>(self);
  auto sup =
      caf::actor_cast<caf::actor>(spawn_pipeline_supervisor(*im.sys, def, sd));
  int swept = 0;
  for (const auto& subject : unrouted)
    swept += sweep_subject(im, self, sup, subject);
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  return swept;
}

} // namespace troupe
