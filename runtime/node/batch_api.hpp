#pragma once

// Batches over NATS (docs/workflows.md, docs/wire-format.md):
// `<prefix>.api.v1.batch` submits jobs as one batch with optional callbacks,
// `<prefix>.api.v1.batch_status` reports its progress (both also under
// `<prefix>.api.v1.tenant.<t>.`). Served by the submit and status APIs'
// worker threads; the store decides everything (runtime/pg/batch_store).

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "messages/json_codec.hpp"
#include "runtime/pg/batch_store.hpp"

namespace troupe {

/// Most jobs one batch may hold.
constexpr std::size_t max_batch_jobs = 10000;

/// What validating a batch request needs from its node.
struct batch_context {
  std::set<std::string> pipelines;
  input_limits limits;
  std::string prefix;
  std::string node_id;
  /// Whether a tenant may submit (tenants_config::known).
  std::function<bool(const std::string&)> known_tenant;
  /// 0 if `n` more jobs of the tenant are admitted by its rate, else the
  /// milliseconds until they would be.
  std::function<std::int64_t(const std::string&, int)> admit;
};

/// Decodes and validates `{"batch_id"?, "tenant"?, "jobs": [...],
/// "on_complete"?, "on_success"?}`; `bound_tenant` is the tenant of a
/// tenant-bound subject. Errors name the field (`jobs[3].pipeline`).
caf::expected<batch_spec>
decode_batch_request(std::string_view body, const batch_context& ctx,
                     const std::optional<std::string>& bound_tenant);

/// The reply to a batch request: `{"ok", "batch_id", "job_ids",
/// "duplicate"}` or an API error.
std::string answer_batch(batch_store& store, std::string_view body,
                         const batch_context& ctx,
                         const std::optional<std::string>& bound_tenant);

/// The reply to a batch_status request `{"batch_id", "tenant"?}`.
std::string answer_batch_status(batch_store& store, std::string_view body,
                                const std::optional<std::string>& bound_tenant);

} // namespace troupe
