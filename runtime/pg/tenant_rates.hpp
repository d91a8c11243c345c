#pragma once

// A tenant's `rate` across the cluster (docs/configuration.md, [tenants]):
// one token bucket per tenant in PostgreSQL (table tenant_rates, function
// troupe.take_rate), taken from by every node, whichever way a job came in.
// The API refuses a submission over the rate with the delay after which it
// would be admitted; a direct publish over it reserves its token anyway
// (the bucket goes into debt) and waits in the store until that delay has
// passed, so a tenant over its rate waits its turn and starves nobody.
//
// Blocking: call from the API's workers or an intake's fetch thread, never
// from a CAF scheduler thread.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "config/config.hpp"

namespace troupe {

class lazy_connection;

/// What a take found and did.
struct rate_take {
  /// Tokens in the bucket before the take (after its refill).
  double held = 0;
  /// Tokens taken (n, or 0 when refused).
  int taken = 0;
};

/// Milliseconds until a bucket that held `held` tokens holds `n`, at
/// `rate_per_s` (0 if it does).
std::int64_t wait_for_tokens(double held, int n, double rate_per_s);

/// For `n` jobs that reserved their tokens from a bucket that held `held`:
/// how long each must wait (ms) until the bucket has paid for it.
std::vector<std::int64_t> reserved_waits(double held, int n, double rate_per_s);

class tenant_rates {
public:
  explicit tenant_rates(std::string pg_url);
  ~tenant_rates();

  tenant_rates(const tenant_rates&) = delete;
  tenant_rates& operator=(const tenant_rates&) = delete;

  /// Takes `n` tokens from `tenant`'s bucket (limits `lim`): only if it
  /// holds them, or always with `reserve`. Errors: unavailable, internal.
  caf::expected<rate_take> take(const std::string& tenant,
                                const tenant_limits& lim, int n, bool reserve);

private:
  std::mutex mtx_;
  std::unique_ptr<lazy_connection> conn_;
};

} // namespace troupe
