#pragma once

// Per-tenant concurrency, shared by all pipeline supervisors of a node: a
// job of a tenant starts only while fewer than the tenant's max_in_flight
// jobs run; the others wait. When a slot frees, every supervisor is told to
// look at its queue again (tenants span pipelines).
//
// Cluster-wide (set_cluster_wide): the limit holds across nodes. A node may
// then run only as many of a tenant's jobs as it holds slots leased from
// the store (runtime/pg/tenant_slots.hpp); a thread of the node's scheduler
// asks the gate what it wants (demand), leases that many slots, and grants
// them here (grant). No actor ever waits for the store.

#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <caf/actor.hpp>

#include "config/config.hpp"

namespace troupe {

class tenant_gate {
public:
  explicit tenant_gate(tenants_config cfg);

  /// Takes a slot for `tenant` if it has one free (always, when unlimited).
  /// `job_id` names the job asking, so that a job refused again and again
  /// counts once in the demand.
  bool try_acquire(const std::string& tenant, const std::string& job_id = {});

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

  /// From now on a tenant runs only as many jobs as it was granted;
  /// `on_demand` is called (outside any actor's wait) when a job is
  /// refused a slot, so that the leaser can ask for one at once.
  void set_cluster_wide(std::function<void()> on_demand);

  /// Slots each limited tenant wants on this node: its running jobs and
  /// the jobs refused a slot since the last call (at most its limit). The
  /// refused are forgotten: wake_all() makes the supervisors ask again.
  std::map<std::string, int> demand();

  /// The slots this node holds for `tenant` now; more wakes the
  /// supervisors.
  void grant(const std::string& tenant, int slots);

  /// Tells every supervisor to look at its queue again.
  void wake_all();

private:
  tenants_config cfg_;
  mutable std::mutex mtx_;
  std::map<std::string, int> running_;
  std::vector<caf::actor> listeners_;
  bool cluster_wide_ = false;
  std::function<void()> on_demand_;
  std::map<std::string, int> granted_;
  std::map<std::string, std::set<std::string>> refused_;
  /// What demand() said last, per tenant.
  std::map<std::string, int> asked_;
};

} // namespace troupe
