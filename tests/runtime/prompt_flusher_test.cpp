// The prompt flush against a real nats-server: what a client waits on
// (the submit API's reply) is written at once instead of at nats.c's next
// flusher tick (runtime/nats/prompt_flusher.hpp). Timing is measured in
// bench/, never asserted here: these tests check that a kick flushes, that
// a burst of kicks is coalesced, and that stopping is clean.

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "runtime/nats/nats_client.hpp"
#include "runtime/nats/nats_subscription.hpp"
#include "runtime/nats/prompt_flusher.hpp"
#include "tests/support/db_probe.hpp"
#include "tests/support/test_servers.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;

class prompt_flusher_test : public ::testing::Test {
protected:
  static void SetUpTestSuite() { servers_ = new test_servers; }
  static void TearDownTestSuite() {
    delete servers_;
    servers_ = nullptr;
  }

  /// Waits (bounded) until `f` has flushed `n` times.
  static bool flushed(const prompt_flusher& f, std::uint64_t n) {
    for (int i = 0; i < 500 && f.flushes() < n; ++i)
      std::this_thread::sleep_for(10ms);
    return f.flushes() >= n;
  }

  /// A second client listening on `subject`, its interest known to the
  /// server before this returns.
  struct listener {
    std::shared_ptr<nats_client> client;
    nats_sync_subscription sub;
  };
  static listener listen(const std::string& subject) {
    listener l{connect_client(servers_->nats_url()), {}};
    EXPECT_TRUE(l.client);
    if (!l.client)
      return l;
    auto sub = nats_sync_subscription::open(*l.client, subject);
    EXPECT_TRUE(sub);
    if (sub)
      l.sub = std::move(*sub);
    EXPECT_FALSE(l.client->flush());
    return l;
  }

  static test_servers* servers_;
};

test_servers* prompt_flusher_test::servers_ = nullptr;

TEST_F(prompt_flusher_test, AKickFlushesWhatWasPublished) {
  auto pub = connect_client(servers_->nats_url());
  ASSERT_TRUE(pub);
  auto l = listen("prompt.one");
  prompt_flusher f{pub->conn()};
  EXPECT_EQ(f.flushes(), 0u); // nothing asked, nothing sent
  ASSERT_FALSE(pub->publish("prompt.one", "reply"));
  f.kick();
  ASSERT_TRUE(flushed(f, 1));
  auto got = l.sub.next(5000);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->data(), "reply");
}

TEST_F(prompt_flusher_test, KicksDuringAFlushAreOneMoreFlushNotOneEach) {
  auto pub = connect_client(servers_->nats_url());
  ASSERT_TRUE(pub);
  // A gap of a second: every kick of the burst below lands while the first
  // flush (or the gap after it) is under way.
  prompt_flusher f{pub->conn(), std::chrono::seconds{1}};
  for (int i = 0; i < 100; ++i) {
    ASSERT_FALSE(pub->publish("prompt.burst", std::to_string(i)));
    f.kick();
  }
  ASSERT_TRUE(flushed(f, 1));
  std::this_thread::sleep_for(2500ms);
  EXPECT_GE(f.flushes(), 1u);
  EXPECT_LE(f.flushes(), 2u);
}

TEST_F(prompt_flusher_test, TheClientFlushesSoonAndClosesWithItsFlusher) {
  auto pub = connect_client(servers_->nats_url());
  ASSERT_TRUE(pub);
  auto l = listen("prompt.client");
  ASSERT_FALSE(pub->publish("prompt.client", "x"));
  pub->flush_soon();
  ASSERT_TRUE(l.sub.next(5000));
  pub->close();
  pub->flush_soon(); // after close: nothing to flush, and no crash
}

TEST_F(prompt_flusher_test, StoppingWhileTheServerIsAwayDoesNotHang) {
  local_nats own;
  ASSERT_FALSE(own.start(servers_->dir() + "/own", free_port()));
  auto pub = connect_client(own.url());
  ASSERT_TRUE(pub);
  {
    prompt_flusher f{pub->conn()};
    own.stop();
    ASSERT_FALSE(pub->publish("prompt.away", "lost?"));
    f.kick(); // the flush fails or times out within its bound
  }
  SUCCEED();
}

} // namespace
} // namespace troupe::test
