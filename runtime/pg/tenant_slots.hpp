#pragma once

// A tenant's max_in_flight across the cluster (docs/scheduling.md): the
// limit is a set of slot rows, and a node runs a tenant's job only in a slot
// it leases. Leases are renewed with the node's job leases; a node that
// stops renewing loses its slots to the others. Blocking; one thread (the
// scheduler's lease thread).

#include <memory>
#include <string>

#include <caf/expected.hpp>

#include "config/config.hpp"

namespace troupe {

class tenant_slots {
public:
  tenant_slots(std::string pg_url, std::string node_id);
  ~tenant_slots();
  tenant_slots(const tenant_slots&) = delete;
  tenant_slots& operator=(const tenant_slots&) = delete;

  /// Makes this node hold `want` of the `limit` slots of `tenant` (fewer
  /// if others hold the rest), renewing what it keeps for `lease`. Returns
  /// how many it holds now.
  caf::expected<int> hold(const std::string& tenant, int limit, int want,
                          duration_ms lease);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace troupe
