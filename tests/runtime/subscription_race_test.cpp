// Closing a subscription while its messages flow, against a real
// nats-server: nats.c 3.4.1 can free a subscription under its read loop
// (nats-io/nats.c#638), which aborted a node that stopped while heartbeats
// flowed. nats_subscription's close waits for the read loop first
// (runtime/nats/nats_subscription.cpp, retire).
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "runtime/nats/nats_client.hpp"
#include "runtime/nats/nats_subscription.hpp"
#include "tests/support/db_probe.hpp"
#include "tests/support/test_servers.hpp"

namespace troupe::test {
namespace {

TEST(SubscriptionRace, ClosingSubscriptionsWhileTheirMessagesFlowIsSafe) {
  test_servers servers;
  auto pub = connect_client(servers.nats_url());
  auto sub_side = connect_client(servers.nats_url());
  ASSERT_TRUE(pub && sub_side);
  std::atomic<bool> stop{false};
  std::thread flood{[&] {
    while (!stop)
      for (int i = 0; i < 100; ++i)
        pub->publish("race.flood", "x");
  }};
  std::atomic<std::int64_t> seen{0};
  for (int i = 0; i < 400; ++i) {
    // Several subscriptions at once, so that the read loop is often in
    // the middle of one of them when another is closed.
    std::vector<nats_subscription> subs;
    for (int k = 0; k < 4; ++k) {
      auto s = nats_subscription::open(*sub_side, "race.flood",
                                       [&](nats_msg) { ++seen; });
      ASSERT_TRUE(s) << describe(s.error());
      subs.push_back(std::move(*s));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  stop = true;
  flood.join();
  EXPECT_GT(seen.load(), 0);
}

} // namespace
} // namespace troupe::test
