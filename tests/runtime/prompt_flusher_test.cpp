// The prompt flush against a real nats-server: what a client waits on
// (the submit API's reply) is written at once instead of at nats.c's next
// flusher tick (runtime/nats/prompt_flusher.hpp), and so is a job's
// terminal event on an idle node. Timing is measured in
// bench/, never asserted here: these tests check that a kick flushes, that
// a burst of kicks is coalesced, and that stopping is clean.

#include <chrono>
#include <thread>

#include <caf/all.hpp>
#include <gtest/gtest.h>

#include "messages/job.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/nats/nats_subscription.hpp"
#include "runtime/nats/prompt_flusher.hpp"
#include "runtime/node/event_publisher.hpp"
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

// A job's terminal event is what its submitter waits on: the event
// publisher flushes it at once when no other event waits behind it
// (runtime/node/event_publisher.cpp). Other events go out at nats.c's
// own tick.
TEST_F(prompt_flusher_test, AnIdleEventPublisherFlushesATerminalEventAtOnce) {
  auto pub = connect_client(servers_->nats_url());
  ASSERT_TRUE(pub);
  auto l = listen("troupe.events.p.>");
  caf::actor_system_config cfg;
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  auto events = spawn_event_publisher(sys, pub, subjects{"troupe"});
  job_event ev;
  ev.type = "job.started";
  ev.job_id = "j1";
  ev.pipeline = "p";
  ev.node = "n1";
  caf::anon_send(events, ev);
  ASSERT_TRUE(l.sub.next(5000)); // sent by nats.c's flusher
  EXPECT_EQ(pub->prompt_flushes(), 0u);
  ev.type = "job.succeeded";
  caf::anon_send(events, std::vector<job_event>{ev});
  ASSERT_TRUE(l.sub.next(5000));
  for (int i = 0; i < 500 && pub->prompt_flushes() == 0; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_GE(pub->prompt_flushes(), 1u);
  caf::anon_send_exit(events, caf::exit_reason::user_shutdown);
}

} // namespace
} // namespace troupe::test
