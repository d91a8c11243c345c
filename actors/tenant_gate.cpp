#include "actors/tenant_gate.hpp"

#include <algorithm>

#include <caf/all.hpp>

#include "actors/atoms.hpp"

namespace troupe {

tenant_gate::tenant_gate(tenants_config cfg) : cfg_(std::move(cfg)) {}

bool tenant_gate::limited(const std::string& tenant) const {
  return cfg_.of(tenant).max_in_flight > 0;
}

int tenant_gate::limit(const std::string& tenant) const {
  return cfg_.of(tenant).max_in_flight;
}

bool tenant_gate::try_acquire(const std::string& tenant,
                              const std::string& job_id) {
  auto max = cfg_.of(tenant).max_in_flight;
  bool new_demand = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto& n = running_[tenant];
    auto cap = cluster_wide_ && max > 0 ? std::min(max, granted_[tenant]) : max;
    if (max <= 0 || n < cap) {
      ++n;
      if (auto i = refused_.find(tenant); i != refused_.end())
        i->second.erase(job_id);
      return true;
    }
    if (cluster_wide_ && refused_[tenant].insert(job_id).second) {
      // Wanting more than the leaser last asked for: ask again now. (Not
      // for a job refused again after a wake-up: that would loop.)
      auto wanted = n + static_cast<int>(refused_[tenant].size());
      new_demand = wanted > asked_[tenant] && asked_[tenant] < max;
    }
  }
  if (new_demand && on_demand_)
    on_demand_();
  return false;
}

void tenant_gate::set_cluster_wide(std::function<void()> on_demand) {
  std::lock_guard<std::mutex> guard{mtx_};
  cluster_wide_ = true;
  on_demand_ = std::move(on_demand);
}

std::map<std::string, int> tenant_gate::demand() {
  std::lock_guard<std::mutex> guard{mtx_};
  std::map<std::string, int> out;
  // Every tenant holding or wanting slots, or granted some (to give them
  // back when it needs none).
  auto want = [&](const std::string& t) {
    auto limit = cfg_.of(t).max_in_flight;
    if (limit <= 0)
      return;
    auto r = running_.count(t) ? running_.at(t) : 0;
    auto f = refused_.count(t) ? static_cast<int>(refused_.at(t).size()) : 0;
    out[t] = asked_[t] = std::min(limit, r + f);
  };
  for (auto& [t, n] : running_)
    want(t);
  for (auto& [t, ids] : refused_)
    want(t);
  for (auto& [t, n] : granted_)
    want(t);
  refused_.clear();
  return out;
}

void tenant_gate::grant(const std::string& tenant, int slots) {
  bool more = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto& g = granted_[tenant];
    more = slots > g;
    g = slots;
    if (slots == 0 && !running_.count(tenant))
      granted_.erase(tenant);
  }
  if (more)
    wake_all();
}

void tenant_gate::wake_all() {
  std::vector<caf::actor> wake;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    wake = listeners_;
  }
  for (auto& a : wake)
    caf::anon_send(a, fill_atom::value);
}

void tenant_gate::release(const std::string& tenant) {
  std::vector<caf::actor> wake;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = running_.find(tenant);
    if (i != running_.end() && --i->second <= 0)
      running_.erase(i);
    if (limited(tenant))
      wake = listeners_;
  }
  for (auto& a : wake)
    caf::anon_send(a, fill_atom::value);
}

std::map<std::string, int> tenant_gate::in_flight() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return running_;
}

void tenant_gate::add_listener(caf::actor a) {
  std::lock_guard<std::mutex> guard{mtx_};
  listeners_.push_back(std::move(a));
}

} // namespace troupe
