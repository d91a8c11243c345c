#pragma once

// Request/reply submission on `<prefix>.api.v1.submit`, served by every node
// in one queue group (exactly one node answers each request). Validates the
// request, publishes the job to JetStream with Nats-Msg-Id = job id, and
// answers `{"ok":true,"job_id":...}` or `{"ok":false,"error":{...}}`.
//
// The NATS callback only copies the request and queues it; validation and
// the blocking JetStream publish run on the API's own worker threads.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <caf/error.hpp>

#include "config/config.hpp"
#include "messages/json_codec.hpp"
#include "runtime/nats/nats_client.hpp"

namespace troupe {

class batch_store;
class tenant_rates;
class blocking_pool;
class job_presence;
class submission_log;

/// Result of validating and routing one submission, before publishing.
struct routed_submission {
  std::string pipeline;
  std::string tenant;
  std::string subject;
  std::string job_id;
  std::string body;
  /// The client named the job (`key`), rather than troupe.
  bool keyed = false;
};

/// Validates an API request body: JSON shape, known pipeline, size limits.
/// Generates a job id when the request has no key.
/// `bound_tenant` is the tenant of a tenant-bound subject
/// (`<prefix>.api.v1.tenant.<t>.submit`): the job is that tenant's, and a
/// body naming another is refused.
/// A submission with `priority` > 0 to a pipeline of `banded` goes to its
/// high-priority band (`<prefix>.jobs.<pipeline>.high`).
caf::expected<routed_submission>
route_submission(std::string_view body, const std::set<std::string>& pipelines,
                 const subjects& subj, const input_limits& limits,
                 const std::optional<std::string>& bound_tenant = {},
                 const std::set<std::string>& banded = {});

/// Generates a new, unique, roughly time-ordered job id.
std::string generate_job_id();

class submit_api {
public:
  submit_api(std::shared_ptr<nats_client> nats, nats_config ncfg,
             std::set<std::string> pipelines, input_limits limits,
             std::shared_ptr<blocking_pool> workers);
  ~submit_api();

  submit_api(const submit_api&) = delete;
  submit_api& operator=(const submit_api&) = delete;

  /// Where keys are looked up before publishing: a key that names a job
  /// in the store is answered `duplicate` whatever the time since its
  /// first submission (JetStream's duplicate window is only minutes). Set
  /// before start(); without it only the window de-duplicates.
  void set_presence(std::shared_ptr<job_presence> presence);

  /// Where accepted submissions are written, so that the stranded sweeper
  /// can publish again one whose message the broker lost
  /// (runtime/pg/submission_log.hpp). Set before start(); without it the
  /// stream is a submission's only copy until a node claims it.
  void set_submission_log(std::shared_ptr<submission_log> log);

  /// Where tenants' rates are counted across the cluster (set before
  /// start(); without it each node counts its own submissions).
  void set_tenant_rates(std::shared_ptr<tenant_rates> rates);

  /// Serves batches (`<prefix>.api.v1.batch`, docs/workflows.md) from
  /// `store`, created by node `node_id`. Set before start(); without it
  /// batch requests get no answer from this node.
  void set_batch_store(std::shared_ptr<batch_store> store, std::string node_id);

  /// Accepted submissions the log could not write (PostgreSQL away).
  std::int64_t unlogged() const;

  /// Called (on a worker thread) for every accepted submission; set
  /// before start().
  void on_accepted(std::function<void(const std::string& pipeline)> fn);

  /// Tenant admission: unknown tenants (`allow_unknown = false`) get
  /// `unknown_tenant`, submissions over a tenant's `rate` get
  /// `rate_limited` with `retry_after_ms`. Set before start().
  void set_tenants(tenants_config cfg);

  /// Pipelines with a high-priority band (`priorities`): a submission with
  /// priority > 0 goes there. Call before start().
  void set_priority_bands(std::set<std::string> pipelines);

  /// Submissions refused for their rate, per tenant, since start.
  std::map<std::string, std::int64_t> rate_limited() const;

  /// Subscribes to `<prefix>.api.v1.submit` and
  /// `<prefix>.api.v1.tenant.*.submit` in the queue group `troupe_api`.
  caf::error start();

  /// Unsubscribes (requests in the workers' queue are still answered).
  void stop();

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace troupe
