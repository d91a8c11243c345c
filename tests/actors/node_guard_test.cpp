// The node guard (actors/node_guard.hpp) under the deterministic test
// coordinator: each watched actor is killed in turn.
#include "actors/node_guard.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <gtest/gtest.h>

#include "tests/actors/deterministic.hpp"

#include "actors/atoms.hpp"

using namespace troupe;

namespace {

caf::actor_system_config& init(caf::actor_system_config& cfg) {
  return test::deterministic_config(cfg);
}

caf::behavior idle(caf::event_based_actor*) {
  return {[](get_atom) {}};
}

class node_guard_test : public ::testing::Test {
public:
  node_guard_test()
      : sys(init(cfg)), sched(dynamic_cast<caf::scheduler::test_coordinator&>(
                            sys.scheduler())) {
    node_guard_deps d;
    d.escalate = [this](const std::string& name, const caf::error& reason) {
      escalations.emplace_back(name, reason);
    };
    guard = spawn_node_guard(sys, d);
    for (auto name : {"store", "events", "member", "pipeline demo"}) {
      auto a = sys.spawn(idle);
      watched.emplace_back(name, a);
      caf::anon_send(guard, guard_watch_atom::value, std::string{name}, a);
    }
    sched.run();
  }

  ~node_guard_test() override {
    caf::anon_send(guard, guard_stand_down_atom::value);
    sched.run();
    for (auto& [name, a] : watched)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(guard, caf::exit_reason::user_shutdown);
    sched.run();
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  caf::actor guard;
  std::vector<std::pair<std::string, caf::actor>> watched;
  std::vector<std::pair<std::string, caf::error>> escalations;
};

} // namespace

TEST_F(node_guard_test, EachWatchedActorThatDiesEscalatesOnceByName) {
  for (std::size_t i = 0; i < watched.size(); ++i) {
    caf::anon_send_exit(watched[i].second, caf::exit_reason::kill);
    sched.run();
    ASSERT_EQ(escalations.size(), i + 1);
    EXPECT_EQ(escalations[i].first, watched[i].first);
    EXPECT_EQ(escalations[i].second, caf::exit_reason::kill);
  }
  // Dead twice is still once.
  caf::anon_send_exit(watched[0].second, caf::exit_reason::kill);
  sched.run();
  EXPECT_EQ(escalations.size(), watched.size());
}

TEST_F(node_guard_test, AnActorThatQuitsOnItsOwnCountsAsDead) {
  // A node actor has no business ending while the node runs, whatever the
  // reason it gives.
  caf::anon_send_exit(watched[1].second, caf::exit_reason::user_shutdown);
  sched.run();
  ASSERT_EQ(escalations.size(), 1u);
  EXPECT_EQ(escalations[0].first, "events");
}

TEST_F(node_guard_test, AfterStandDownExitsAreExpected) {
  caf::anon_send(guard, guard_stand_down_atom::value);
  sched.run();
  for (auto& [name, a] : watched)
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  sched.run();
  EXPECT_TRUE(escalations.empty());
}

TEST_F(node_guard_test, TheGuardListsTheDead) {
  caf::anon_send_exit(watched[3].second, caf::exit_reason::kill);
  sched.run();
  caf::scoped_actor self{sys};
  std::vector<std::string> dead;
  auto h = self->request(guard, caf::infinite, get_atom::value);
  sched.run();
  h.receive([&](std::vector<std::string>& v) { dead = std::move(v); },
            [](caf::error&) {});
  EXPECT_EQ(dead, std::vector<std::string>{"pipeline demo"});
}
