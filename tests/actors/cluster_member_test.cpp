// Membership logic under the deterministic test coordinator.
#include "actors/cluster_member.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <gtest/gtest.h>

#include "tests/actors/deterministic.hpp"

#include "actors/atoms.hpp"

using namespace troupe;
using namespace std::chrono_literals;

namespace {

caf::actor_system_config& init(caf::actor_system_config& cfg) {
  return test::deterministic_config(cfg);
}

class cluster_member_test : public ::testing::Test {
public:
  cluster_member_test()
      : sys(init(cfg)), sched(dynamic_cast<caf::scheduler::test_coordinator&>(
                            sys.scheduler())) {
    bus = sys.spawn([this](caf::event_based_actor*) -> caf::behavior {
      return {[this](heartbeat& hb) { published.push_back(std::move(hb)); }};
    });
    listener = sys.spawn([this](caf::event_based_actor*) -> caf::behavior {
      return {
          [this](member_atom, member& m) { changes.push_back(std::move(m)); },
          [this](conflict_atom, heartbeat& hb) {
            conflicts.push_back(std::move(hb));
          },
      };
    });
    cluster_deps d;
    d.bus = bus;
    d.listener = listener;
    d.self.node_id = "n1";
    d.self.host = "h1";
    d.self.pid = 100;
    d.self.started_at_ms = 5;
    d.self.capacity = 10;
    d.interval = 1000ms;
    d.failure_timeout = 3000ms;
    d.now_ms = [] { return std::int64_t{42}; };
    d.load = [this] { return load; };
    me = spawn_cluster_member(sys, d);
    sched.run();
  }

  ~cluster_member_test() override {
    caf::anon_send_exit(me, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(bus, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(listener, caf::exit_reason::user_shutdown);
    sched.run();
  }

  heartbeat peer_hb(const std::string& id, std::int64_t pid = 7) {
    heartbeat hb;
    hb.node_id = id;
    hb.host = "h2";
    hb.pid = pid;
    hb.started_at_ms = 9;
    return hb;
  }

  void advance(caf::timespan d) {
    sched.advance_time(d);
    sched.run();
  }

  std::vector<member> view() {
    std::vector<member> out;
    caf::scoped_actor self{sys};
    self->send(me, get_atom::value);
    sched.run();
    self->receive([&](std::vector<member>& v) { out = std::move(v); });
    return out;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  caf::actor bus;
  caf::actor listener;
  caf::actor me;
  std::vector<heartbeat> published;
  std::vector<member> changes;
  std::vector<heartbeat> conflicts;
  std::int64_t load = 3;
};

} // namespace

TEST_F(cluster_member_test, PublishesAHeartbeatAtStartAndEveryInterval) {
  ASSERT_EQ(published.size(), 1u);
  EXPECT_EQ(published[0].node_id, "n1");
  EXPECT_EQ(published[0].in_flight, 3);
  load = 5;
  advance(1000ms);
  advance(1000ms);
  ASSERT_EQ(published.size(), 3u);
  EXPECT_EQ(published[2].seq, 3);
  EXPECT_EQ(published[2].in_flight, 5);
}

TEST_F(cluster_member_test, ASilentPeerIsMarkedDownWithinTheFailureTimeout) {
  caf::anon_send(me, peer_hb("n2"));
  sched.run();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].state, "up");
  advance(1000ms);
  advance(1000ms);
  EXPECT_EQ(changes.size(), 1u); // 2 s silent: still up
  advance(1000ms);
  ASSERT_EQ(changes.size(), 2u); // 3 s silent: down
  EXPECT_EQ(changes[1].last.node_id, "n2");
  EXPECT_EQ(changes[1].state, "down");
  caf::anon_send(me, peer_hb("n2"));
  sched.run();
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[2].state, "up");
}

TEST_F(cluster_member_test, HeartbeatsKeepAPeerUp) {
  caf::anon_send(me, peer_hb("n2"));
  sched.run();
  for (int i = 0; i < 10; ++i) {
    advance(1000ms);
    caf::anon_send(me, peer_hb("n2"));
    sched.run();
  }
  EXPECT_EQ(changes.size(), 1u);
  auto v = view();
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].last.node_id, "n1");
  EXPECT_EQ(v[1].last.node_id, "n2");
  EXPECT_EQ(v[1].state, "up");
}

TEST_F(cluster_member_test, AnotherProcessWithOurIdIsAConflict) {
  auto hb = peer_hb("n1", 999);
  caf::anon_send(me, hb);
  sched.run();
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_EQ(conflicts[0].pid, 999);
  // Our own echo is not a conflict.
  caf::anon_send(me, published[0]);
  sched.run();
  EXPECT_EQ(conflicts.size(), 1u);
}

TEST_F(cluster_member_test, DrainingIsAnnouncedAtOnceAndLeavingSaysDown) {
  caf::anon_send(me, state_atom::value, std::string{"draining"});
  sched.run();
  ASSERT_EQ(published.size(), 2u);
  EXPECT_EQ(published[1].state, "draining");
  caf::anon_send(me, leave_atom::value);
  sched.run();
  ASSERT_EQ(published.size(), 3u);
  EXPECT_EQ(published[2].state, "down");
}

TEST_F(cluster_member_test, APeerSayingGoodbyeIsDownAtOnce) {
  caf::anon_send(me, peer_hb("n2"));
  sched.run();
  auto bye = peer_hb("n2");
  bye.state = "down";
  caf::anon_send(me, bye);
  sched.run();
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[1].state, "down");
}
