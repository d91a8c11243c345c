// The admin actor (actors/admin_actor.hpp) under the deterministic test
// coordinator: routing of hostile requests, blocking verbs on a worker
// queue the test drains, live verbs fanned out to supervisors with a
// deadline, and load shedding.
#include "actors/admin_actor.hpp"

#include <deque>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/actors/deterministic.hpp"

#include "messages/admin_failure.hpp"
#include "messages/stats.hpp"

using namespace troupe;
using json = nlohmann::json;

namespace {

caf::actor_system_config& init(caf::actor_system_config& cfg) {
  return test::deterministic_config(cfg);
}

/// A supervisor that answers the admin actor's questions about one job.
caf::behavior supervisor(caf::event_based_actor*, std::string pipeline,
                         std::string holds) {
  return {
      [=](tree_atom, std::int32_t) {
        job_brief b;
        b.job_id = holds;
        b.state = "running";
        b.stage = "a";
        return std::vector<job_brief>{b};
      },
      [=](stats_atom) {
        pipeline_stats s;
        s.pipeline = pipeline;
        s.running = 1;
        return s;
      },
      [=](cancel_atom, const std::string& id) -> caf::result<ok_atom> {
        if (id == holds)
          return ok_atom::value;
        return caf::sec::request_receiver_down;
      },
      [=](now_atom, const std::string& id) -> caf::result<bool> {
        if (id == holds)
          return true;
        return caf::sec::request_receiver_down;
      },
  };
}

/// A supervisor that never answers (a stuck pipeline): it keeps every
/// request's promise and delivers none.
struct silent_state {
  std::vector<caf::response_promise> held;
};

caf::behavior silent(caf::stateful_actor<silent_state>* self) {
  auto hold = [self] {
    self->state.held.push_back(self->make_response_promise());
    return self->state.held.back();
  };
  return {[hold](tree_atom, std::int32_t) { return hold(); },
          [hold](stats_atom) { return hold(); }};
}

class admin_actor_test : public ::testing::Test {
public:
  admin_actor_test()
      : sys(init(cfg)), sched(dynamic_cast<caf::scheduler::test_coordinator&>(
                            sys.scheduler())) {
    verbs = std::make_shared<admin_verb_table>();
    add_live_admin_verbs(*verbs);
    verbs->add_read("echo", [](const json& req) { return req; });
    verbs->add_control("boom", {"why"}, [](const json& req) -> json {
      throw admin_failure("conflict", req.value("why", "no reason"));
    });
  }

  ~admin_actor_test() override {
    caf::anon_send_exit(admin, caf::exit_reason::user_shutdown);
    for (auto& [name, a] : sups)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    sched.run();
  }

  void start() {
    admin_actor_deps d;
    d.node_id = "n1";
    d.verbs = verbs;
    d.workers = [this](std::function<void()> fn) {
      if (!accepting)
        return false;
      tasks.push_back(std::move(fn));
      return true;
    };
    d.any_workers = d.workers;
    d.supervisors = sups;
    d.intake_paused = [](const std::string& p) { return p == "beta"; };
    admin = spawn_admin_actor(sys, d);
    sched.run();
  }

  /// Sends a call; runs messages and the worker queue; the reply, or null
  /// if none came yet.
  json call(const std::string& cls, const std::string& verb,
            const std::string& body = {}) {
    self->send(admin, admin_call{"n1", cls, verb, body});
    settle();
    return reply();
  }

  void settle() {
    sched.run();
    while (!tasks.empty()) {
      auto t = std::move(tasks.front());
      tasks.pop_front();
      t();
      sched.run();
    }
  }

  json reply() {
    json out;
    self->receive([&](std::string& text) { out = json::parse(text); },
                  caf::after(std::chrono::seconds{0}) >> [] {});
    return out;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  caf::scoped_actor self{sys};
  std::shared_ptr<admin_verb_table> verbs;
  std::vector<std::pair<std::string, caf::actor>> sups;
  std::deque<std::function<void()>> tasks;
  bool accepting = true;
  admin_actor admin;
};

std::string code_of(const json& r) {
  return r.at("error").at("code").get<std::string>();
}

} // namespace

TEST_F(admin_actor_test, HostileRequestsAreRefusedWithACodeAndTheActorLives) {
  start();
  auto r = call("write", "echo");
  EXPECT_EQ(code_of(r), "unknown_verb");
  r = call("read", "nope");
  EXPECT_EQ(code_of(r), "unknown_verb");
  EXPECT_NE(r["error"]["message"].get<std::string>().find("echo"),
            std::string::npos)
      << "the refusal lists the known verbs";
  r = call("read", "boom");
  EXPECT_EQ(r["error"]["message"], "'boom' is a control verb");
  r = call("read", "echo", std::string(200000, '['));
  EXPECT_FALSE(r["ok"].get<bool>()) << "a 200k-deep body is refused";
  r = call("read", "echo", std::string{"{\"a\":\"x\0y\"", 11});
  EXPECT_FALSE(r["ok"].get<bool>()) << "a raw NUL byte is not JSON";
  r = call("control", "boom", R"({"why":"x","evil":1})");
  EXPECT_EQ(code_of(r), "invalid_request");
  r = call("control", "boom", "[1]");
  EXPECT_EQ(code_of(r), "invalid_request");
  EXPECT_TRUE(tasks.empty()) << "nothing refused reached a worker";
  // ... and the actor still answers.
  r = call("read", "echo", R"({"x":1})");
  EXPECT_TRUE(r["ok"].get<bool>());
  EXPECT_EQ(r["node"], "n1");
  EXPECT_EQ(r["result"]["x"], 1);
}

TEST_F(admin_actor_test, ABlockingVerbRunsOnAWorkerAndItsFailureIsTyped) {
  start();
  self->send(admin, admin_call{"any", "control", "boom", R"({"why":"no"})"});
  sched.run();
  EXPECT_EQ(tasks.size(), 1u) << "the verb waits for a worker";
  EXPECT_TRUE(reply().is_null()) << "no reply before the worker ran";
  settle();
  auto r = reply();
  EXPECT_EQ(code_of(r), "conflict");
  EXPECT_EQ(r["error"]["message"], "no");
}

TEST_F(admin_actor_test, AFullWorkerPoolShedsLoadAsUnavailable) {
  start();
  accepting = false;
  auto r = call("read", "echo", "{}");
  EXPECT_EQ(code_of(r), "unavailable");
  accepting = true;
  EXPECT_TRUE(call("read", "echo", "{}")["ok"].get<bool>());
}

TEST_F(admin_actor_test,
       TreeGathersEverySupervisorAndNamesOneThatMissesTheDeadline) {
  sups.emplace_back("gamma", sys.spawn(silent));
  sups.emplace_back("alpha", sys.spawn(supervisor, "alpha", "j1"));
  sups.emplace_back("beta", sys.spawn(supervisor, "beta", "j2"));
  start();
  self->send(admin, admin_call{"n1", "read", "tree", R"({"limit":5})"});
  settle();
  EXPECT_TRUE(reply().is_null()) << "gamma has not answered yet";
  sched.advance_time(std::chrono::seconds{3});
  settle();
  auto r = reply();
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  const auto& p = r["result"]["pipelines"];
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0]["pipeline"], "alpha");
  EXPECT_EQ(p[0]["jobs"][0]["job_id"], "j1");
  EXPECT_EQ(p[1]["pipeline"], "beta");
  EXPECT_TRUE(p[1]["paused"].get<bool>());
  EXPECT_EQ(p[2]["pipeline"], "gamma");
  EXPECT_TRUE(p[2].contains("error")) << "gamma timed out";
  EXPECT_TRUE(p[2]["jobs"].empty());
}

TEST_F(admin_actor_test, CancelAndRetryLocalAskEverySupervisorForTheHolder) {
  sups.emplace_back("alpha", sys.spawn(supervisor, "alpha", "j1"));
  sups.emplace_back("beta", sys.spawn(supervisor, "beta", "j2"));
  start();
  auto r = call("control", "cancel_local", R"({"job_id":"j2"})");
  EXPECT_TRUE(r["result"]["found"].get<bool>()) << r.dump();
  r = call("control", "cancel_local", R"({"job_id":"nobody"})");
  EXPECT_FALSE(r["result"]["found"].get<bool>());
  r = call("control", "retry_local", R"({"job_id":"j1"})");
  EXPECT_TRUE(r["result"]["fired"].get<bool>());
  r = call("control", "cancel_local", "{}");
  EXPECT_EQ(code_of(r), "invalid_request") << "job_id is required";
  EXPECT_TRUE(tasks.empty()) << "live verbs need no worker";
}

TEST_F(admin_actor_test, StatsFailWholeWhenOneSupervisorDoesNotAnswer) {
  sups.emplace_back("alpha", sys.spawn(supervisor, "alpha", "j1"));
  sups.emplace_back("gamma", sys.spawn(silent));
  start();
  self->send(admin, admin_call{"n1", "read", "stats", ""});
  settle();
  EXPECT_TRUE(reply().is_null());
  sched.advance_time(std::chrono::seconds{2});
  settle();
  EXPECT_EQ(code_of(reply()), "failed");
  // Partial counters would read as a healthy, idle pipeline.
}

TEST_F(admin_actor_test, StatsListEveryPipelineInConfigurationOrder) {
  sups.emplace_back("beta", sys.spawn(supervisor, "beta", "j2"));
  sups.emplace_back("alpha", sys.spawn(supervisor, "alpha", "j1"));
  start();
  auto r = call("read", "stats");
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  ASSERT_EQ(r["result"].size(), 2u);
  EXPECT_EQ(r["result"][0]["pipeline"], "beta");
  EXPECT_TRUE(r["result"][0]["paused"].get<bool>());
  EXPECT_EQ(r["result"][1]["running"], 1);
}

TEST_F(admin_actor_test, NodesWithoutAMemberFailsRatherThanHangs) {
  start();
  auto r = call("read", "nodes");
  EXPECT_EQ(code_of(r), "failed") << r.dump();
}
