// The pull consumer speaks JetStream's pull protocol itself (one reply
// subject per request), against a real nats-server. nats.c 3.4.1's Fetch
// wrote past its list when more than half a batch of late deliveries (of
// an earlier, expired request) already waited in the subscription: the
// heap corruption that killed chaos-run nodes (docs/reliability.md). These
// tests put exactly those late deliveries and stale statuses in front of a
// fetch.

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
    auto c = js_pull_consumer::bind(*nats_, cfg_.stream, "",
                                    "troupe_" + pipeline, true);
    EXPECT_TRUE(c) << describe(c.error());
    return std::move(*c);
  }

  /// A pull request this consumer did not make, answered into its inbox:
  /// what an expired request's late deliveries look like.
  void foreign_request(const js_pull_consumer& c, const std::string& pipeline,
                       const std::string& body) {
    ASSERT_FALSE(nats_->publish_request("$JS.API.CONSUMER.MSG.NEXT." +
                                            cfg_.stream + ".troupe_" + pipeline,
                                        c.inbox() + ".0", body));
    ASSERT_FALSE(nats_->flush());
  }

  std::uint64_t stream_messages(const std::string& pipeline) {
    auto per = nats_->stream_subjects(cfg_.stream, "troupe.jobs." + pipeline);
    if (!per || per->empty())
      return 0;
    return per->front().second;
  }

  static inline test_servers* servers_ = nullptr;
  nats_config cfg_;
  std::shared_ptr<nats_client> nats_;
};

TEST_F(pull_consumer_test, LateDeliveriesNeverOverfillABatchAndNoneIsLost) {
  auto c = consumer_with("late", 60);
  // 50 deliveries for a request the consumer no longer waits on: queued
  // in its subscription before it fetches (nats.c overflowed here: 50 > 8/2).
  foreign_request(c, "late", R"({"batch":50})");
  std::this_thread::sleep_for(300ms);
  std::map<std::string, int> seen;
  std::size_t largest = 0;
  for (int round = 0; round < 40 && seen.size() < 60; ++round) {
    auto got = c.fetch(8, 500);
    ASSERT_TRUE(got) << describe(got.error());
    largest = std::max(largest, got->size());
    for (auto& m : *got) {
      ++seen[std::string{m.data()}];
      m.ack();
    }
  }
  EXPECT_LE(largest, 8u);
  EXPECT_EQ(largest, 8u) << "a full batch from the queued deliveries";
  ASSERT_EQ(seen.size(), 60u);
  for (auto& [data, n] : seen)
    EXPECT_EQ(n, 1) << "message " << data << " handed out " << n << " times";
  ASSERT_FALSE(nats_->flush());
  for (int i = 0; i < 50 && stream_messages("late") > 0; ++i)
    std::this_thread::sleep_for(100ms);
  EXPECT_EQ(stream_messages("late"), 0u) << "every ack reached the stream";
}

TEST_F(pull_consumer_test, AnEarlierRequestsEndDoesNotEndTheCurrentOne) {
  auto c = consumer_with("stale", 0);
  // An earlier request that expires at once: its 408 (or 404) arrives in
  // the consumer's inbox before the next fetch starts.
  foreign_request(c, "stale", R"({"batch":1,"expires":1000000})");
  std::this_thread::sleep_for(200ms);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(nats_->js_publish("troupe.jobs.stale", "s",
                                  "stale-" + std::to_string(i)));
  std::size_t got_total = 0;
  auto got = c.fetch(10, 1000);
  ASSERT_TRUE(got) << describe(got.error());
  got_total = got->size();
  for (auto& m : *got)
    m.ack();
  EXPECT_EQ(got_total, 3u);
}

TEST_F(pull_consumer_test, NakWithDelayRedeliversAndInProgressKeepsTheMessage) {
  auto c = consumer_with("nak", 1);
  auto first = c.fetch(1, 1000);
  ASSERT_TRUE(first && first->size() == 1u);
  (*first)[0].in_progress();
  (*first)[0].nak(300);
  auto none = c.fetch_now(1);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty()) << "redelivered before its delay";
  std::this_thread::sleep_for(400ms);
  auto again = c.fetch(1, 2000);
  ASSERT_TRUE(again && again->size() == 1u);
  EXPECT_EQ((*again)[0].data(), "0");
  EXPECT_TRUE((*again)[0].ack_sync());
}

// The consumer mender's premise (runtime/node/consumer_mender.hpp): a
// consumer the broker lost, made again under its name, is fetched from by
// the same pull consumer, without binding again.
TEST_F(pull_consumer_test, AConsumerMadeAgainUnderItsNameIsFetchedFromAgain) {
  auto c = consumer_with("again", 0);
  nats_->delete_consumer(cfg_.stream, "troupe_again");
  auto lost = c.fetch(5, 500); // an error or nothing: neither may crash
  EXPECT_TRUE(!lost || lost->empty());
  ASSERT_FALSE(nats_->ensure_consumer(cfg_, "again", 20000));
  ASSERT_TRUE(nats_->js_publish("troupe.jobs.again", "back", "again-1"));
  std::vector<nats_msg> got;
  for (int i = 0; i < 10 && got.empty(); ++i)
    if (auto r = c.fetch(5, 500))
      got = std::move(*r);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data(), "back");
  EXPECT_TRUE(got[0].ack_sync());
}

} // namespace
} // namespace troupe::test
