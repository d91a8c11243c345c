#include "actors/tenant_gate.hpp"

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

bool tenant_gate::try_acquire(const std::string& tenant) {
  auto max = cfg_.of(tenant).max_in_flight;
  std::lock_guard<std::mutex> guard{mtx_};
  auto& n = running_[tenant];
  if (max > 0 && n >= max)
    return false;
  ++n;
  return true;
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
