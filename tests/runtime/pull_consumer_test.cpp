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

  /// A pull request the consumer did not make, answered into its inbox:
  /// what an expired request's late deliveries look like.
  void late_request(const js_pull_consumer& c, const std::string& pipeline,
                    int batch) {
    ASSERT_FALSE(nats_->publish_request(
        "$JS.API.CONSUMER.MSG.NEXT." + cfg_.stream + ".troupe_" + pipeline,
        c.inbox(), "{\"batch\":" + std::to_string(batch) + "}"));
    ASSERT_FALSE(nats_->flush());
  }

  /// Fetches (`fetch(batch)`, or `fetch_now(batch)` with `now`) and acks
  /// until `want` distinct messages were seen, counting each; no fetch may
  /// return more than `batch`.
  static void take_all(js_pull_consumer& c, int batch, bool now,
                       std::size_t want, std::map<std::string, int>& seen) {
    for (int round = 0; round < 200 && seen.size() < want; ++round) {
      auto got = now ? c.fetch_now(batch) : c.fetch(batch, 500);
      ASSERT_TRUE(got) << describe(got.error());
      EXPECT_LE(got->size(), static_cast<std::size_t>(batch));
      for (auto& m : *got) {
        ++seen[std::string{m.data()}];
        m.ack();
      }
    }
  }

  static void each_once(const std::map<std::string, int>& seen) {
    for (auto& [data, n] : seen)
      EXPECT_EQ(n, 1) << "message " << data << " handed out " << n << " times";
  }

  static inline test_servers* servers_ = nullptr;
  nats_config cfg_;
  std::shared_ptr<nats_client> nats_;
};

TEST_F(pull_consumer_test, LateDeliveriesNeverOverfillABatchAndNoneIsLost) {
  auto c = consumer_with("late", 60);
  ASSERT_FALSE(c.inbox().empty());
  // 50 deliveries for a request the consumer does not wait on any more,
  // queued in its subscription before it fetches (50 > 8 / 2, which
  // nats.c's Fetch cannot take).
  ASSERT_NO_FATAL_FAILURE(late_request(c, "late", 50));
  std::this_thread::sleep_for(300ms);
  std::map<std::string, int> seen;
  ASSERT_NO_FATAL_FAILURE(take_all(c, 8, false, 60, seen));
  ASSERT_EQ(seen.size(), 60u);
  each_once(seen);
}

// The overflow itself: 5 of a batch of 8 wait (2 x 5 > 8), the fetch asks
// for the other 3, gets them, and waits on for the rest of its time while
// 20 more late deliveries arrive; nats.c 3.4.1 writes them all past its
// list of 8 (without the guard: "free(): invalid next size (fast)").
TEST_F(pull_consumer_test, DeliveriesArrivingDuringAFetchNeverOverfillIt) {
  auto c = consumer_with("burst", 40);
  ASSERT_NO_FATAL_FAILURE(late_request(c, "burst", 5));
  std::this_thread::sleep_for(300ms);
  std::thread late{[&] {
    std::this_thread::sleep_for(200ms);
    late_request(c, "burst", 20);
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
  ASSERT_NO_FATAL_FAILURE(take_all(c, 8, false, 40, seen));
  EXPECT_EQ(seen.size(), 40u);
  each_once(seen);
}

TEST_F(pull_consumer_test, ANoWaitFetchTakesWaitingDeliveriesOneAtATime) {
  auto c = consumer_with("nowait", 20);
  ASSERT_NO_FATAL_FAILURE(late_request(c, "nowait", 15));
  std::this_thread::sleep_for(300ms);
  std::map<std::string, int> seen;
  ASSERT_NO_FATAL_FAILURE(take_all(c, 4, true, 20, seen));
  EXPECT_EQ(seen.size(), 20u);
  each_once(seen);
}

} // namespace
} // namespace troupe::test
