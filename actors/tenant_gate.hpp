#pragma once

// Per-tenant concurrency on one node, shared by all pipeline supervisors: a
// job of a tenant starts only while fewer than the tenant's max_in_flight
// jobs run; the others wait. When a slot frees, every supervisor is told to
// look at its queue again (tenants span pipelines).

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor.hpp>

#include "config/config.hpp"

namespace troupe {

class tenant_gate {
public:
  explicit tenant_gate(tenants_config cfg);

  /// Takes a slot for `tenant` if it has one free (always, when unlimited).
  bool try_acquire(const std::string& tenant);

  /// Gives a slot back and wakes the supervisors.
  void release(const std::string& tenant);

  /// True if `tenant` has a concurrency limit.
  bool limited(const std::string& tenant) const;

  /// The tenant's limit (0 = none).
  int limit(const std::string& tenant) const;

  /// Running jobs per tenant (for metrics and the shell).
  std::map<std::string, int> in_flight() const;

  /// Supervisors to wake (with fill_atom) when a slot frees.
  void add_listener(caf::actor a);

  const tenants_config& config() const { return cfg_; }

private:
  tenants_config cfg_;
  mutable std::mutex mtx_;
  std::map<std::string, int> running_;
  std::vector<caf::actor> listeners_;
};

} // namespace troupe
