// The pull consumer against a real nats-server, with late deliveries
// waiting in its subscription before a fetch: nats.c 3.4.1's Fetch writes
// past its list when more than half of the batch waits there (the heap
// corruption of the chaos runs, docs/reliability.md), so the consumer asks
// for one at a time while any wait (runtime/nats/nats_subscription.cpp,
// safe_batch).

#include <chrono>
#include <map>
#include <thread>

#include <gtest/gtest.h>

#include "config/config.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/nats/nats_subscription.hpp"
#include "tests/support/db_probe.hpp"
#include "tests/support/test_servers.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;

class pull_consumer_test : public ::testing::Test {
protected:
  static void SetUpTestSuite() { servers_ = new test_servers; }
  static void TearDownTestSuite() {
    delete servers_;
    servers_ = nullptr;
  }

  void SetUp() override {
    nats_ = connect_client(servers_->nats_url());
    ASSERT_TRUE(nats_);
    ASSERT_FALSE(nats_->ensure_stream(cfg_));
  }

  /// A pipeline's consumer with `n` messages waiting ("0".."n-1").
  js_pull_consumer consumer_with(const std::string& pipeline, int n) {
    EXPECT_FALSE(nats_->ensure_consumer(cfg_, pipeline, 20000));
    for (int i = 0; i < n; ++i)
      EXPECT_TRUE(nats_->js_publish("troupe.jobs." + pipeline,
                                    std::to_string(i),
                                    pipeline + "-" + std::to_string(i)));
    auto c =
        js_pull_consumer::bind(*nats_, cfg_.stream, "troupe.jobs." + pipeline,
                               "troupe_" + pipeline, true);
    EXPECT_TRUE(c) << describe(c.error());
    return std::move(*c);
  }

  static inline test_servers* servers_ = nullptr;
  nats_config cfg_;
  std::shared_ptr<nats_client> nats_;
};

TEST_F(pull_consumer_test, LateDeliveriesNeverOverfillABatchAndNoneIsLost) {
  auto c = consumer_with("late", 60);
  ASSERT_FALSE(c.inbox().empty());
  // 50 deliveries for a request the consumer does not wait on any more,
  // answered into its inbox: queued in its subscription before it fetches
  // (50 > 8 / 2, which nats.c's Fetch cannot take).
  ASSERT_FALSE(nats_->publish_request("$JS.API.CONSUMER.MSG.NEXT." +
                                          cfg_.stream + ".troupe_late",
                                      c.inbox(), R"({"batch":50})"));
  ASSERT_FALSE(nats_->flush());
  std::this_thread::sleep_for(300ms);
  std::map<std::string, int> seen;
  std::size_t largest = 0;
  for (int round = 0; round < 200 && seen.size() < 60; ++round) {
    auto got = c.fetch(8, 500);
    ASSERT_TRUE(got) << describe(got.error());
    largest = std::max(largest, got->size());
    for (auto& m : *got) {
      ++seen[std::string{m.data()}];
      m.ack();
    }
  }
  EXPECT_LE(largest, 8u);
  ASSERT_EQ(seen.size(), 60u);
  for (auto& [data, n] : seen)
    EXPECT_EQ(n, 1) << "message " << data << " handed out " << n << " times";
}

// The overflow itself: 5 of a batch of 8 wait (2 x 5 > 8), the fetch asks
// for the other 3, gets them, and waits on for the rest of its time while
// 20 more late deliveries arrive; nats.c 3.4.1 writes them all past its
// list of 8.
TEST_F(pull_consumer_test, DeliveriesArrivingDuringAFetchNeverOverfillIt) {
  auto c = consumer_with("burst", 40);
  auto next = "$JS.API.CONSUMER.MSG.NEXT." + cfg_.stream + ".troupe_burst";
  ASSERT_FALSE(nats_->publish_request(next, c.inbox(), R"({"batch":5})"));
  ASSERT_FALSE(nats_->flush());
  std::this_thread::sleep_for(300ms);
  std::thread late{[&] {
    std::this_thread::sleep_for(200ms);
    (void)nats_->publish_request(next, c.inbox(), R"({"batch":20})");
    (void)nats_->flush();
  }};
  auto got = c.fetch(8, 1000);
  late.join();
  ASSERT_TRUE(got) << describe(got.error());
  EXPECT_LE(got->size(), 8u);
  std::map<std::string, int> seen;
  for (auto& m : *got) {
    ++seen[std::string{m.data()}];
    m.ack();
  }
  for (int round = 0; round < 200 && seen.size() < 40; ++round) {
    auto more = c.fetch(8, 500);
    ASSERT_TRUE(more) << describe(more.error());
    EXPECT_LE(more->size(), 8u);
    for (auto& m : *more) {
      ++seen[std::string{m.data()}];
      m.ack();
    }
  }
  EXPECT_EQ(seen.size(), 40u);
  for (auto& [data, n] : seen)
    EXPECT_EQ(n, 1) << "message " << data << " handed out " << n << " times";
}

TEST_F(pull_consumer_test, ANoWaitFetchTakesWaitingDeliveriesOneAtATime) {
  auto c = consumer_with("nowait", 20);
  ASSERT_FALSE(nats_->publish_request("$JS.API.CONSUMER.MSG.NEXT." +
                                          cfg_.stream + ".troupe_nowait",
                                      c.inbox(), R"({"batch":15})"));
  ASSERT_FALSE(nats_->flush());
  std::this_thread::sleep_for(300ms);
  std::map<std::string, int> seen;
  for (int round = 0; round < 100 && seen.size() < 20; ++round) {
    auto got = c.fetch_now(4);
    ASSERT_TRUE(got) << describe(got.error());
    EXPECT_LE(got->size(), 4u);
    for (auto& m : *got) {
      ++seen[std::string{m.data()}];
      m.ack();
    }
  }
  EXPECT_EQ(seen.size(), 20u);
}

} // namespace
} // namespace troupe::test
