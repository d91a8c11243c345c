#pragma once

// What a submitter may ask about its jobs (docs/wire-format.md):
//   `<prefix>.api.v1.status`  the job's state, stage, progress, attempts,
//                             result and error, read from PostgreSQL;
//   `<prefix>.api.v1.wait`    the same, once the job ends or `timeout_ms`
//                             passes (`"done": false`);
//   `<prefix>.api.v1.complete` an outside system completes a callback
//                             stage (runtime/node/callback_api.hpp).
// Both also under `<prefix>.api.v1.tenant.<tenant>.`, where the tenant comes
// from the subject: NATS permissions on that subject bind a tenant to a
// user. A job is visible only to its own tenant (the body's `tenant`, or
// the subject's); any other job is `not_found`, exactly like a job that
// does not exist. Served in the queue group `troupe_api`, on the API's own
// worker threads; waits hold no thread (runtime/node/job_waiters.hpp).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

#include "config/config.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/pg/status_store.hpp"

namespace troupe {

class blocking_pool;
class job_waiters;

/// A decoded status or wait request.
struct status_request {
  std::string job_id;
  /// Whose jobs the requester may see ("" : jobs without a tenant).
  std::string tenant;
  /// wait only: how long to wait at most.
  std::chrono::milliseconds timeout{30000};
};

/// Longest wait a request may ask for (5 minutes); longer is refused.
constexpr std::chrono::milliseconds max_status_wait{300000};

/// Decodes a request body: `{"job_id", "tenant"?, "timeout_ms"? (wait)}`.
/// `subject_tenant` is the tenant of a tenant-bound subject (nullopt for
/// the plain ones): the body may not name another. Unknown fields, a
/// missing job id and a timeout out of range are errors.
caf::expected<status_request>
decode_status_request(std::string_view body, bool wait,
                      const std::optional<std::string>& subject_tenant);

/// The tenant of a tenant-bound API subject (`<prefix>.api.v1.tenant.<t>.`
/// followed by `verb`), nullopt for any other subject.
std::optional<std::string> subject_tenant(std::string_view subject,
                                          std::string_view prefix,
                                          std::string_view verb);

/// `{"ok": true, "job": ...}` (with `"done"` for waits), or `not_found`
/// when there is no row or it is another tenant's.
std::string encode_status_reply(const std::optional<job_status>& st,
                                const std::string& job_id,
                                const std::string& tenant,
                                std::optional<bool> done);

std::string encode_api_error(std::string_view code, std::string_view message);

class status_api {
public:
  status_api(std::shared_ptr<nats_client> nats, nats_config ncfg,
             std::string pg_url, std::shared_ptr<blocking_pool> workers);
  ~status_api();

  status_api(const status_api&) = delete;
  status_api& operator=(const status_api&) = delete;

  /// Subscribes (queue group `troupe_api`) and starts the waiters' thread.
  caf::error start();

  /// Unsubscribes; jobs still waited for are answered `"done": false`, so
  /// their clients ask again (another node answers).
  void stop();

  /// Requests waiting for their job to end.
  std::size_t waiting() const;

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace troupe
