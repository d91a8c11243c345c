// The node's run decision (runtime/node/node_governor.hpp), tick by tick, with
// a clock the test moves: no servers, no sleeps.
#include <algorithm>

#include <gtest/gtest.h>

#include "runtime/node/node_governor.hpp"

using namespace troupe;
using namespace std::chrono_literals;

namespace {

struct governor_test : ::testing::Test {
  node_governor gov{duration_ms{30000}};
  governor_input in;

  governor_test() { in.now = std::chrono::steady_clock::time_point{} + 1h; }

  governor_step tick(std::chrono::milliseconds advance = 200ms) {
    in.now += advance;
    auto out = gov.step(in);
    in.drain_requested = in.resume_requested = false;
    return out;
  }

  static bool noted(const governor_step& s, governor_note n) {
    return std::find(s.notes.begin(), s.notes.end(), n) != s.notes.end();
  }
};

} // namespace

TEST_F(governor_test, AHealthyNodeFetchesAndKeepsRunning) {
  auto s = tick();
  EXPECT_TRUE(s.fetching);
  EXPECT_FALSE(s.exit);
  EXPECT_FALSE(s.begin_shutdown);
  EXPECT_FALSE(s.announce);
  EXPECT_TRUE(s.notes.empty());
  EXPECT_EQ(gov.health(), "healthy");
}

TEST_F(governor_test, AnUnreachableStoreStopsFetchingUntilItIsBack) {
  in.store_healthy = false;
  auto s = tick();
  EXPECT_FALSE(s.fetching);
  EXPECT_TRUE(noted(s, governor_note::degraded_store));
  EXPECT_EQ(gov.health(), "degraded");
  // Said once, not every tick.
  EXPECT_TRUE(tick().notes.empty());
  in.store_healthy = true;
  s = tick();
  EXPECT_TRUE(s.fetching);
  EXPECT_TRUE(noted(s, governor_note::recovered));
  EXPECT_EQ(gov.health(), "healthy");
}

TEST_F(governor_test, AnUnreachableNatsIsNamedAsSuch) {
  in.nats_connected = false;
  auto s = tick();
  EXPECT_FALSE(s.fetching);
  EXPECT_TRUE(noted(s, governor_note::degraded_nats));
}

TEST_F(governor_test, ADrainStopsFetchingAndExitsOnceTheLastJobIsDone) {
  in.in_flight = 3;
  in.drain_requested = true;
  auto s = tick();
  EXPECT_FALSE(s.fetching);
  EXPECT_EQ(s.announce, "draining");
  EXPECT_TRUE(noted(s, governor_note::drain_started));
  EXPECT_FALSE(s.exit);
  in.in_flight = 1;
  EXPECT_FALSE(tick().exit);
  in.in_flight = 0;
  s = tick();
  EXPECT_TRUE(s.exit);
  EXPECT_TRUE(s.begin_shutdown);
  EXPECT_FALSE(noted(s, governor_note::handing_back));
  EXPECT_EQ(gov.exit_code(), 0);
}

TEST_F(governor_test, ADrainThatOutlivesItsGraceHandsTheRestBack) {
  in.in_flight = 5;
  in.drain_requested = true;
  tick();
  EXPECT_FALSE(tick(29s).exit);
  auto s = tick(1s);
  EXPECT_TRUE(s.exit);
  EXPECT_TRUE(noted(s, governor_note::handing_back));
}

TEST_F(governor_test, AResumeCancelsADrain) {
  in.in_flight = 2;
  in.drain_requested = true;
  tick();
  in.resume_requested = true;
  auto s = tick();
  EXPECT_TRUE(s.fetching);
  EXPECT_EQ(s.announce, "up");
  EXPECT_TRUE(noted(s, governor_note::drain_cancelled));
  // The old deadline no longer applies.
  EXPECT_FALSE(tick(60s).exit);
}

TEST_F(governor_test, AResumeDoesNotFetchWhileADependencyIsDown) {
  in.drain_requested = true;
  in.in_flight = 1;
  tick();
  in.store_healthy = false;
  in.resume_requested = true;
  EXPECT_FALSE(tick().fetching);
}

TEST_F(governor_test, ShutdownFinishesInFlightJobsWithinTheGrace) {
  in.in_flight = 2;
  in.shutdown_requested = true;
  auto s = tick();
  EXPECT_TRUE(s.begin_shutdown);
  EXPECT_FALSE(s.fetching);
  EXPECT_EQ(s.announce, "draining");
  EXPECT_TRUE(noted(s, governor_note::shutting_down));
  EXPECT_FALSE(s.exit);
  // begin_shutdown happens once.
  EXPECT_FALSE(tick().begin_shutdown);
  in.in_flight = 0;
  EXPECT_TRUE(tick().exit);
}

TEST_F(governor_test, ShutdownDuringADrainKeepsTheDrainsDeadline) {
  in.in_flight = 4;
  in.drain_requested = true;
  tick();
  tick(20s);
  in.shutdown_requested = true;
  auto s = tick();
  EXPECT_TRUE(s.begin_shutdown);
  EXPECT_FALSE(s.announce) << "already announced as draining";
  EXPECT_FALSE(s.exit);
  s = tick(10s);
  EXPECT_TRUE(s.exit) << "30 s after the drain began, not after shutdown";
}

TEST_F(governor_test, ResumeAfterShutdownChangesNothing) {
  in.in_flight = 1;
  in.shutdown_requested = true;
  tick();
  in.resume_requested = true;
  auto s = tick();
  EXPECT_FALSE(s.fetching);
  EXPECT_FALSE(s.announce);
}

TEST_F(governor_test, AnEscalationDrainsTheNodeAndExitsNonZero) {
  in.in_flight = 1;
  in.escalated = true;
  auto s = tick();
  EXPECT_TRUE(noted(s, governor_note::escalated));
  EXPECT_EQ(s.announce, "draining");
  EXPECT_FALSE(s.fetching);
  EXPECT_EQ(gov.health(), "unhealthy");
  // An operator's resume cannot bring back a node whose actors died.
  in.resume_requested = true;
  EXPECT_FALSE(tick().fetching);
  in.in_flight = 0;
  EXPECT_TRUE(tick().exit);
  EXPECT_EQ(gov.exit_code(), 3);
}

TEST_F(governor_test, AnIdleNodeExitsAtOnceOnShutdown) {
  in.shutdown_requested = true;
  auto s = tick();
  EXPECT_TRUE(s.begin_shutdown);
  EXPECT_TRUE(s.exit);
}
