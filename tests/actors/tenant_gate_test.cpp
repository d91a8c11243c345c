// The tenant gate on its own: a node's share of a tenant's cluster-wide
// slots (granted by the leaser), the demand it reports, and when it asks
// the leaser to hurry.
#include <gtest/gtest.h>

#include "actors/tenant_gate.hpp"

using namespace troupe;

namespace {

tenants_config acme_limited(int n) {
  tenants_config cfg;
  cfg.named["acme"].max_in_flight = n;
  return cfg;
}

} // namespace

TEST(TenantGate, OnOneNodeTheLimitIsTheConfiguredOne) {
  tenant_gate g{acme_limited(2)};
  EXPECT_TRUE(g.try_acquire("acme", "j1"));
  EXPECT_TRUE(g.try_acquire("acme", "j2"));
  EXPECT_FALSE(g.try_acquire("acme", "j3"));
  EXPECT_TRUE(g.try_acquire("unlimited", "j4"));
  g.release("acme");
  EXPECT_TRUE(g.try_acquire("acme", "j3"));
}

TEST(TenantGate, ClusterWideANodeRunsOnlyWhatItWasGranted) {
  tenant_gate g{acme_limited(3)};
  int nudges = 0;
  g.set_cluster_wide([&] { ++nudges; });
  // Nothing granted yet: the job waits, and the leaser is asked at once.
  EXPECT_FALSE(g.try_acquire("acme", "j1"));
  EXPECT_EQ(nudges, 1);
  // Refused again after a wake-up: no new demand, no new nudge.
  EXPECT_FALSE(g.try_acquire("acme", "j1"));
  EXPECT_EQ(nudges, 1);
  auto d = g.demand();
  EXPECT_EQ(d.at("acme"), 1);
  g.grant("acme", 1);
  EXPECT_TRUE(g.try_acquire("acme", "j1"));
  // A second job wants more than was asked for: another nudge.
  EXPECT_FALSE(g.try_acquire("acme", "j2"));
  EXPECT_EQ(nudges, 2);
  EXPECT_EQ(g.demand().at("acme"), 2);
  // Demand never exceeds the tenant's limit, whatever waits.
  for (int i = 3; i < 10; ++i)
    g.try_acquire("acme", "j" + std::to_string(i));
  EXPECT_EQ(g.demand().at("acme"), 3);
  // Once its jobs end, the node wants (and keeps) nothing.
  g.release("acme");
  EXPECT_EQ(g.demand().at("acme"), 0);
  g.grant("acme", 0);
  EXPECT_TRUE(g.demand().empty());
}
