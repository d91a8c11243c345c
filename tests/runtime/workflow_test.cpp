// Child jobs (docs/workflows.md): fan-out, the join, policies, cancel and
// retention, against real servers (workflow_fixture.hpp).

#include "workflow_fixture.hpp"

namespace troupe::test {

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

TEST_F(workflow_test, AThousandChildrenAcrossThreeNodesOneKilledJoinOnce) {
  auto n1 = start_node("wf-1");
  auto n2 = start_node("wf-2");
  auto n3 = start_node("wf-3");
  publish("fanout", "thousand", 1000);
  // Kill a node once some children have ended, while the rest run.
  ASSERT_TRUE(eventually(
      [&] {
        return count("select count(*) from jobs where parent_id = "
                     "'thousand' and state = 'succeeded'") >= 200;
      },
      120s));
  n2->signal(SIGKILL);
  ASSERT_TRUE(ended("thousand", "succeeded", 180s))
      << text("select state || ' ' || coalesce(last_error, '') from jobs "
              "where job_id = 'thousand'");
  // Every child succeeded once: one successful attempt each.
  EXPECT_EQ(count("select count(*) from jobs where parent_id = 'thousand' "
                  "and state = 'succeeded'"),
            1000);
  EXPECT_EQ(count("select count(*) from (select job_id from job_attempts "
                  "where job_id like 'thousand/%' and ok group by job_id "
                  "having count(*) = 1) x"),
            1000);
  // The parent spawned once and resumed once: two successful attempts of
  // `split` (the spawn and the join), one job.spawned.
  EXPECT_EQ(count("select count(*) from job_attempts where job_id = "
                  "'thousand' and stage = 'split' and ok"),
            2);
  EXPECT_EQ(count("select count(*) from job_events where job_id = "
                  "'thousand' and type = 'job.spawned'"),
            1);
  // The join received every result, in spawn order.
  auto split = json::parse(text("select output::text from stage_checkpoints "
                                "where job_id = 'thousand' and stage_index = "
                                "0"));
  ASSERT_EQ(split["children"].size(), 1000u);
  for (int i = 0; i < 1000; ++i) {
    const auto& c = split["children"][i];
    ASSERT_EQ(c["job_id"], "thousand/split/" + std::to_string(i));
    ASSERT_EQ(c["result"]["sq"], i * i) << c.dump();
  }
  EXPECT_EQ(split["succeeded"], 1000);
  auto result = json::parse(text("select result::text from jobs where "
                                 "job_id = 'thousand'"));
  EXPECT_EQ(result["sum"], 332833500); // sum of i*i for i < 1000
  EXPECT_EQ(count("select count(*) from jobs where job_id = 'thousand' and "
                  "children is not null"),
            0);
  auto shown = shell_output(
      "job thousand; job thousand/split/7; jobs --parent thousand --limit 3");
  EXPECT_NE(shown.find("children: 1000  succeeded 1000"), std::string::npos)
      << shown;
  EXPECT_NE(shown.find("parent: thousand"), std::string::npos) << shown;
  EXPECT_NE(shown.find("thousand/split/999"), std::string::npos) << shown;
  EXPECT_TRUE(n1->running());
  EXPECT_TRUE(n3->running());
}

TEST_F(workflow_test, ADeadChildFailsAStrictParentAndIsListedByALenientOne) {
  auto node = start_node("wf-policy");
  write_file(servers_->dir() + "/broken-1", "");
  publish("strict", "strict-1", 3);
  publish("lenient", "lenient-1", 3);
  ASSERT_TRUE(ended("strict-1", "dead_lettered"));
  ASSERT_TRUE(ended("lenient-1", "succeeded"));
  auto err = text("select last_error from jobs where job_id = 'strict-1'");
  EXPECT_NE(err.find("child_failed: 1 of 3 children did not succeed; first: "
                     "strict-1/split/1 dead_lettered"),
            std::string::npos)
      << err;
  EXPECT_EQ(count("select count(*) from dead_letters where job_id = "
                  "'strict-1'"),
            1);
  auto out = json::parse(text("select result::text from jobs where job_id = "
                              "'lenient-1'"));
  EXPECT_EQ(out["failed"], 1);
  EXPECT_EQ(out["succeeded"], 2);
  EXPECT_EQ(out["children"][1]["state"], "dead_lettered");
  EXPECT_EQ(out["children"][2]["result"]["i"], 2);
  // The status API, as a client asks: a parent counts its children by
  // state, a child names its parent.
  auto nats = client();
  auto st =
      nats->request("troupe.api.v1.status", R"({"job_id":"lenient-1"})", 5000);
  ASSERT_TRUE(st) << describe(st.error());
  auto doc = json::parse(*st);
  EXPECT_EQ(doc["job"]["children"],
            json::parse(R"({"dead_lettered":1,"succeeded":2})"))
      << *st;
  st = nats->request("troupe.api.v1.status",
                     R"({"job_id":"lenient-1/split/0"})", 5000);
  ASSERT_TRUE(st) << describe(st.error());
  EXPECT_EQ(json::parse(*st)["job"]["parent_id"], "lenient-1") << *st;
  // Mend the child, replay it, then replay the parent: the workflow
  // completes and no child that succeeded runs again.
  std::remove((servers_->dir() + "/broken-1").c_str());
  ASSERT_TRUE(
      admin("replay", {{"job_id", "strict-1/split/1"}}).value("ok", false));
  ASSERT_TRUE(ended("strict-1/split/1", "succeeded"));
  ASSERT_TRUE(admin("replay", {{"job_id", "strict-1"}}).value("ok", false));
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id = 'strict-1' and "
                 "state = 'succeeded' and life = 2") == 1;
  }));
  auto again = json::parse(text("select result::text from jobs where "
                                "job_id = 'strict-1'"));
  EXPECT_EQ(again["succeeded"], 3);
  EXPECT_EQ(count("select count(*) from job_attempts where job_id in "
                  "('strict-1/split/0', 'strict-1/split/2') and ok"),
            2);
  EXPECT_TRUE(node->running());
}

TEST_F(workflow_test, CancellingAWaitingParentCancelsItsChildren) {
  auto node = start_node("wf-cancel");
  publish("waits", "waiter", 4);
  ASSERT_TRUE(ended("waiter", "waiting"));
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where parent_id = 'waiter' and "
                 "state = 'running'") >= 1;
  }));
  auto r = admin("cancel", {{"job_id", "waiter"}});
  ASSERT_TRUE(r.value("ok", false)) << r.dump();
  EXPECT_EQ(count("select count(*) from jobs where parent_id = 'waiter' and "
                  "state = 'cancelled'"),
            4);
  EXPECT_EQ(count("select count(*) from job_events where job_id like "
                  "'waiter/%' and type = 'job.cancelled'"),
            4);
  EXPECT_TRUE(ended("waiter", "cancelled", 5s));
  EXPECT_TRUE(node->running());
}

TEST_F(workflow_test, RetentionKeepsTheChildrenOfAParentThatWaits) {
  auto node = start_node("wf-keep");
  ASSERT_TRUE(
      client()->js_publish("troupe.jobs.keeps", R"({"payload":{}})", "keeper"));
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where parent_id = 'keeper' and "
                 "state = 'succeeded'") == 2;
  }));
  std::this_thread::sleep_for(1500ms); // older than `brief`'s retention
  ASSERT_TRUE(admin("prune", json::object()).value("ok", false));
  EXPECT_EQ(count("select count(*) from jobs where parent_id = 'keeper'"), 3);
  // Once the parent has ended, its finished children go like any job.
  ASSERT_TRUE(admin("cancel", {{"job_id", "keeper"}}).value("ok", false));
  ASSERT_TRUE(admin("prune", json::object()).value("ok", false));
  EXPECT_EQ(count("select count(*) from jobs where parent_id = 'keeper' and "
                  "pipeline = 'brief'"),
            0);
  EXPECT_TRUE(node->running());
}

TEST_F(workflow_test, ABadSpawnListDeadLettersTheStageWithWhatIsWrong) {
  auto node = start_node("wf-bad");
  auto nats = client();
  // Too many children, or one of an unknown pipeline: the list is refused
  // whole, nothing is created, and the error says what and where.
  ASSERT_TRUE(nats->js_publish("troupe.jobs.strict",
                               R"({"payload":{"n":100001}})", "too-many"));
  ASSERT_TRUE(ended("too-many", "dead_lettered"));
  auto err = text("select last_error from jobs where job_id = 'too-many'");
  EXPECT_NE(err.find("invalid_spawn: spawn asks for 100001 children; the "
                     "stage allows 10000 (max_children)"),
            std::string::npos)
      << err;
  EXPECT_EQ(count("select count(*) from jobs where parent_id = 'too-many'"), 0);
  ASSERT_TRUE(
      nats->js_publish("troupe.jobs.stray", R"({"payload":{}})", "stray-1"));
  ASSERT_TRUE(ended("stray-1", "dead_lettered"));
  err = text("select last_error from jobs where job_id = 'stray-1'");
  EXPECT_NE(err.find("invalid_spawn: spawn[1].pipeline: unknown pipeline "
                     "'nowhere'"),
            std::string::npos)
      << err;
  EXPECT_EQ(count("select count(*) from jobs where parent_id = 'stray-1'"), 0);
  EXPECT_TRUE(node->running());
}

} // namespace

} // namespace troupe::test
