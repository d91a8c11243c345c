#include "runtime/node/submit_api.hpp"
#include "runtime/common/latency_probe.hpp"
#include "runtime/node/batch_api.hpp"
#include "runtime/pg/job_presence.hpp"
#include "runtime/pg/submission_log.hpp"
#include "runtime/pg/tenant_rates.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <random>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "messages/errc.hpp"
#include "runtime/common/blocking_pool.hpp"
#include "runtime/nats/nats_subscription.hpp"
#include "runtime/node/status_api.hpp"

namespace troupe {

struct submit_api::impl {
  std::shared_ptr<nats_client> nats;
  nats_config ncfg;
  std::set<std::string> pipelines;
  std::set<std::string> banded; ///< pipelines with a high-priority band
  input_limits limits;
  std::shared_ptr<blocking_pool> workers;
  std::vector<nats_subscription> subs;
  std::atomic<std::int64_t> accepted{0};
  std::atomic<std::int64_t> rejected{0};
  std::atomic<std::int64_t> misdirected{0};
  std::function<void(const std::string&)> on_accepted;
  std::shared_ptr<job_presence> presence;
  std::shared_ptr<submission_log> log;
  std::shared_ptr<batch_store> batches;
  std::string node_id;
  std::atomic<std::int64_t> unlogged{0};
  tenants_config tenants;
  /// Token buckets per tenant: tokens and when they were last topped up.
  struct bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point at;
    bool fresh = true;
  };
  mutable std::mutex tenant_mtx;
  std::map<std::string, bucket> buckets;
  std::map<std::string, std::int64_t> limited;

  std::shared_ptr<tenant_rates> rates;

  /// 0 if `n` more jobs of `tenant` are admitted by its rate (taken from
  /// the cluster's bucket in PostgreSQL; from this node's own while the
  /// store is away), else milliseconds until they would be.
  std::int64_t admit(const std::string& tenant, int n = 1) {
    const auto& lim = tenants.of(tenant);
    if (lim.rate_per_s <= 0)
      return 0;
    if (rates) {
      if (auto t = rates->take(tenant, lim, n, false)) {
        if (t->taken > 0)
          return 0;
        std::lock_guard<std::mutex> guard{tenant_mtx};
        ++limited[tenant];
        return std::max<std::int64_t>(
            1, wait_for_tokens(t->held, n, lim.rate_per_s));
      }
    }
    for (int i = 0; i < n; ++i)
      if (auto wait = admit_locally(tenant, lim))
        return wait;
    return 0;
  }

  /// This node's own bucket (bursts up to rate_burst).
  std::int64_t admit_locally(const std::string& tenant,
                             const tenant_limits& lim) {
    auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> guard{tenant_mtx};
    auto& b = buckets[tenant];
    double capacity = std::max(1.0, lim.rate_burst);
    if (b.fresh) {
      b.tokens = capacity;
      b.fresh = false;
    } else {
      double secs = std::chrono::duration<double>(now - b.at).count();
      b.tokens = std::min(capacity, b.tokens + secs * lim.rate_per_s);
    }
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    ++limited[tenant];
    return static_cast<std::int64_t>(
        std::ceil((1 - b.tokens) / lim.rate_per_s * 1000));
  }
};

std::string generate_job_id() {
  // 48 bits of milliseconds + 64 random bits, base 32 (Crockford): ids
  // sort by submission time, and collide with probability ~2^-64 per ms.
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
  auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
  std::string out(23, '0');
  for (int i = 9; i >= 0; --i) {
    out[i] = alphabet[ms & 31];
    ms >>= 5;
  }
  auto r = rng();
  for (int i = 22; i >= 10; --i) {
    out[i] = alphabet[r & 31];
    r >>= 5;
  }
  return "j" + out;
}

caf::expected<routed_submission>
route_submission(std::string_view body, const std::set<std::string>& pipelines,
                 const subjects& subj, const input_limits& limits,
                 const std::optional<std::string>& bound_tenant,
                 const std::set<std::string>& banded) {
  auto sub = decode_submission(body, limits);
  if (!sub)
    return sub.error();
  if (bound_tenant) {
    if (!sub->tenant.empty() && sub->tenant != *bound_tenant)
      return make_error(errc::invalid_payload,
                        "field 'tenant' ('" + sub->tenant +
                            "') differs from the subject's tenant ('" +
                            *bound_tenant + "')");
    sub->tenant = *bound_tenant;
  }
  if (sub->pipeline.empty())
    return make_error(errc::invalid_payload, "missing field 'pipeline'");
  if (!pipelines.count(sub->pipeline)) {
    std::string known;
    for (auto& p : pipelines)
      known += (known.empty() ? "" : ", ") + p;
    return make_error(errc::unknown_pipeline, "unknown pipeline '" +
                                                  sub->pipeline +
                                                  "' (known: " + known + ")");
  }
  // `#` separates a job id from its life in replays' message ids
  // (`<job>#<life>`): a key with it could swallow a real replay.
  if (sub->key.find('#') != std::string::npos)
    return make_error(errc::invalid_payload,
                      "field 'key' must not contain '#'");
  routed_submission out;
  out.pipeline = sub->pipeline;
  out.tenant = sub->tenant;
  out.subject = sub->priority > 0 && banded.count(sub->pipeline)
                    ? subj.jobs_high(sub->pipeline)
                    : subj.jobs(sub->pipeline);
  out.job_id = sub->key.empty() ? generate_job_id() : sub->key;
  out.keyed = !sub->key.empty();
  sub->pipeline.clear();
  sub->key.clear();
  out.body = encode_submission(*sub);
  return out;
}

namespace {

void respond(nats_client& nats, const std::string& reply,
             const std::string& body) {
  if (reply.empty())
    return;
  // The client waits on this reply: it leaves now, not at the next tick.
  if (!nats.publish(reply, body))
    nats.flush_soon();
}

/// A key that names a job in the store: the same job again (`duplicate`),
/// or another pipeline's (`conflict`). Nothing is published either way.
bool answered_as_existing(submit_api::impl& im, const routed_submission& r,
                          const std::string& reply) {
  if (!r.keyed || !im.presence)
    return false;
  auto pipeline = im.presence->pipeline_of(r.job_id);
  if (!pipeline || pipeline->empty())
    return false; // unknown, or the store is away: the stream de-duplicates
  if (*pipeline != r.pipeline) {
    ++im.rejected;
    respond(*im.nats, reply,
            encode_submit_error("conflict", "key '" + r.job_id +
                                                "' is a job of pipeline '" +
                                                *pipeline + "'"));
    return true;
  }
  respond(*im.nats, reply, encode_submit_duplicate(r.job_id));
  return true;
}

/// Writes the accepted submission to the log (a retry of a logged one
/// changes nothing). A failure loses no job, the stream has it: only the
/// net under a broker that loses it is missing, so it is counted, and the
/// reply is still ok.
void log_accepted(submit_api::impl& im, const routed_submission& r,
                  std::uint64_t seq) {
  if (!im.log)
    return;
  auto err = im.log->record({r.job_id, r.pipeline, r.subject, r.body, seq});
  if (err && im.unlogged++ % 1000 == 0)
    spdlog::warn("submit api: an accepted job was not logged ({} so far; "
                 "the stream holds it): {}",
                 im.unlogged.load(), describe(err));
}

/// Whether the submission's tenant is over its rate (it is told when to
/// retry).
bool answered_as_rate_limited(submit_api::impl& im, const routed_submission& r,
                              const std::string& reply) {
  auto wait = im.admit(r.tenant);
  if (wait <= 0)
    return false;
  ++im.rejected;
  const auto& lim = im.tenants.of(r.tenant);
  nlohmann::json err{
      {"ok", false},
      {"error",
       {{"code", "rate_limited"},
        {"message", "tenant '" + r.tenant + "' is over its rate of " +
                        lim.rate + "; retry in " + std::to_string(wait) +
                        " ms"},
        {"retry_after_ms", wait}}}};
  respond(*im.nats, reply, err.dump());
  return true;
}

/// A batch request (docs/workflows.md): validated like its jobs' own
/// submissions, and created in the store in one transaction.
void handle_batch(const std::shared_ptr<submit_api::impl>& im,
                  const std::string& subject, const std::string& body,
                  const std::string& reply) {
  batch_context ctx;
  ctx.pipelines = im->pipelines;
  ctx.limits = im->limits;
  ctx.prefix = im->ncfg.prefix;
  ctx.node_id = im->node_id;
  ctx.known_tenant = [im](const std::string& t) {
    return im->tenants.known(t);
  };
  ctx.admit = [im](const std::string& t, int n) { return im->admit(t, n); };
  respond(*im->nats, reply,
          answer_batch(*im->batches, body, ctx,
                       subject_tenant(subject, im->ncfg.prefix, "batch")));
}

bool is_batch_request(const submit_api::impl& im, std::string_view subject) {
  static constexpr std::string_view verb = ".batch";
  return im.batches && subject.size() > verb.size() &&
         subject.substr(subject.size() - verb.size()) == verb;
}

/// Publishes an accepted submission. A job admitted by its tenant's rate
/// here says so, and the intake takes no second token for it
/// (docs/configuration.md, [tenants]).
caf::expected<std::uint64_t> publish_routed(submit_api::impl& im,
                                            const routed_submission& r,
                                            bool& duplicate) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (im.tenants.of(r.tenant).rate_per_s > 0)
    headers.emplace_back("Troupe-Rate", "admitted");
  return im.nats->js_publish_headers(r.subject, r.body, r.job_id, headers, 5000,
                                     &duplicate);
}

void handle(const std::shared_ptr<submit_api::impl>& im,
            const std::string& subject, std::string body, std::string reply,
            std::int64_t received_us) {
  subjects subj{im->ncfg.prefix};
  auto routed = route_submission(
      body, im->pipelines, subj, im->limits,
      subject_tenant(subject, im->ncfg.prefix, "submit"), im->banded);
  if (!routed) {
    ++im->rejected;
    auto code = to_string(code_of(routed.error()));
    std::string msg = describe(routed.error());
    // describe() prefixes the code; the reply carries it separately.
    if (auto pos = msg.find(": "); pos != std::string::npos)
      msg = msg.substr(pos + 2);
    respond(*im->nats, reply, encode_submit_error(code, msg));
    return;
  }
  if (!im->tenants.known(routed->tenant)) {
    ++im->rejected;
    respond(*im->nats, reply,
            encode_submit_error(
                "unknown_tenant",
                routed->tenant.empty()
                    ? "a tenant is required (unknown tenants are not allowed)"
                    : "unknown tenant '" + routed->tenant +
                          "' (unknown tenants are not allowed)"));
    return;
  }
  latency_probe::mark_at(routed->job_id, "api.received", received_us);
  latency_probe::mark(routed->job_id, "api.routed");
  if (answered_as_existing(*im, *routed, reply))
    return;
  latency_probe::mark(routed->job_id, "api.checked");
  if (answered_as_rate_limited(*im, *routed, reply))
    return;
  bool duplicate = false;
  auto seq = publish_routed(*im, *routed, duplicate);
  latency_probe::mark(routed->job_id, "api.published");
  if (seq && duplicate) {
    // The stream already holds this key (duplicate window): the same
    // submission again is fine, the key of another pipeline's job is not.
    auto stored = im->nats->stored_subject(im->ncfg.stream, *seq);
    if (!stored.empty() && stored != routed->subject) {
      ++im->rejected;
      respond(*im->nats, reply,
              encode_submit_error(
                  "conflict", "key '" + routed->job_id +
                                  "' was submitted to another pipeline (" +
                                  stored + ") within the duplicate window"));
      return;
    }
  }
  if (!seq) {
    ++im->rejected;
    respond(*im->nats, reply,
            encode_submit_error("unavailable", "job not accepted, retry: " +
                                                   describe(seq.error())));
    return;
  }
  log_accepted(*im, *routed, *seq);
  if (duplicate) {
    respond(*im->nats, reply, encode_submit_duplicate(routed->job_id));
    return;
  }
  ++im->accepted;
  if (im->on_accepted)
    im->on_accepted(routed->pipeline);
  latency_probe::mark(routed->job_id, "api.logged");
  respond(*im->nats, reply, encode_submit_ok(routed->job_id));
}

void on_request(const std::weak_ptr<submit_api::impl>& weak,
                const nats_msg& msg) {
  // NATS thread: copy and hand on, nothing else.
  auto received_us = latency_probe::enabled() ? latency_probe::now_us() : 0;
  std::string body{msg.data()};
  std::string reply{msg.reply()};
  auto im = weak.lock();
  if (!im)
    return;
  // Answers go to inboxes only: a reply-to naming an admin or JetStream API
  // subject would make this node publish there with its own rights. Such a
  // request is not a real client's: it is dropped, not acted on.
  if (!reply.empty() && !is_inbox_subject(reply, im->ncfg.inbox_prefix)) {
    if (im->misdirected++ % 1000 == 0)
      spdlog::warn("submit api: dropped a request whose reply subject '{}' "
                   "is not an inbox under '{}.' ({} so far)",
                   reply.substr(0, 128), im->ncfg.inbox_prefix,
                   im->misdirected.load());
    return;
  }
  auto posted =
      im->workers->post([im, subject = std::string{msg.subject()},
                         body = std::move(body), reply, received_us]() mutable {
        if (is_batch_request(*im, subject))
          handle_batch(im, subject, body, reply);
        else
          handle(im, subject, std::move(body), std::move(reply), received_us);
      });
  if (!posted)
    respond(*im->nats, reply,
            encode_submit_error(
                "unavailable", im->workers->stopping()
                                   ? "node is shutting down; retry"
                                   : "node is overloaded (" +
                                         std::to_string(im->workers->queued()) +
                                         " requests queued); retry"));
}

} // namespace

submit_api::submit_api(std::shared_ptr<nats_client> nats, nats_config ncfg,
                       std::set<std::string> pipelines, input_limits limits,
                       std::shared_ptr<blocking_pool> workers)
    : impl_(std::make_shared<impl>()) {
  impl_->nats = std::move(nats);
  impl_->ncfg = std::move(ncfg);
  impl_->pipelines = std::move(pipelines);
  impl_->limits = limits;
  impl_->workers = std::move(workers);
}

submit_api::~submit_api() {
  stop();
}

void submit_api::set_priority_bands(std::set<std::string> pipelines) {
  impl_->banded = std::move(pipelines);
}

void submit_api::set_tenants(tenants_config cfg) {
  impl_->tenants = std::move(cfg);
}

std::map<std::string, std::int64_t> submit_api::rate_limited() const {
  std::lock_guard<std::mutex> guard{impl_->tenant_mtx};
  return impl_->limited;
}

void submit_api::set_presence(std::shared_ptr<job_presence> presence) {
  impl_->presence = std::move(presence);
}

void submit_api::set_tenant_rates(std::shared_ptr<tenant_rates> rates) {
  impl_->rates = std::move(rates);
}

void submit_api::set_batch_store(std::shared_ptr<batch_store> store,
                                 std::string node_id) {
  impl_->batches = std::move(store);
  impl_->node_id = std::move(node_id);
}

void submit_api::set_submission_log(std::shared_ptr<submission_log> log) {
  impl_->log = std::move(log);
}

std::int64_t submit_api::unlogged() const {
  return impl_->unlogged.load();
}

void submit_api::on_accepted(std::function<void(const std::string&)> fn) {
  impl_->on_accepted = std::move(fn);
}

caf::error submit_api::start() {
  subscribe_options so;
  so.queue = "troupe_api";
  std::vector<std::string> subs{subjects{impl_->ncfg.prefix}.submit(),
                                impl_->ncfg.prefix + ".api.v1.tenant.*.submit"};
  if (impl_->batches) {
    subs.push_back(impl_->ncfg.prefix + ".api.v1.batch");
    subs.push_back(impl_->ncfg.prefix + ".api.v1.tenant.*.batch");
  }
  return nats_subscription::open_each(
      *impl_->nats, subs,
      [weak = std::weak_ptr<impl>(impl_)](nats_msg m) { on_request(weak, m); },
      so, impl_->subs);
}

void submit_api::stop() {
  if (impl_->subs.empty())
    return;
  // Leave the queue group first, then answer what has arrived: requests
  // already delivered to this node are answered, not dropped (the server
  // sends new ones to the other nodes meanwhile).
  for (auto& s : impl_->subs)
    s.close(5000);
  impl_->subs.clear();
  impl_->workers->stop(); // runs the requests still queued
  impl_->nats->flush(2000);
}

} // namespace troupe
