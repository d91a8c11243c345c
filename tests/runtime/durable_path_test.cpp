// The durable path end to end: a real `troupe node` process, a real
// nats-server with JetStream and a real PostgreSQL, driven the way outside
// publishers drive it (NATS request/reply and JetStream publishes).
#include <csignal>
#include <memory>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#define PQXX_HAVE_OPTIONAL
#include "child_process.hpp"
#include "messages/errc.hpp"
#include "runtime/client/job_tracker.hpp"
#include "runtime/exec/process.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/pg/migrations.hpp"
#include "tests/runtime/durable_fixture.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/test_servers.hpp"
#include <cstring>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

TEST_F(durable_path_test, AThousandJobsReachExactlyOneTerminalStateEach) {
  auto node = start_node("thousand");
  auto nats = client();
  subjects subj{"troupe"};
  job_tracker tracker{nats, subj, "three"};
  ASSERT_FALSE(tracker.start());
  std::vector<std::string> bodies;
  for (int i = 0; i < 1000; ++i)
    bodies.push_back(body("three", ""));
  auto replies = submit_requests(*nats, subj, bodies, 256, 60s);
  ASSERT_TRUE(replies) << describe(replies.error());
  std::set<std::string> ids;
  for (auto& r : *replies) {
    ASSERT_TRUE(r.ok) << r.error_code << ": " << r.error_message;
    ids.insert(r.job_id);
    tracker.submitted(r.job_id);
  }
  EXPECT_EQ(ids.size(), 1000u);
  ASSERT_TRUE(tracker.wait_all(120s, {})) << node->output();
  int succeeded = 0;
  for (auto& [id, j] : tracker.jobs())
    succeeded += j.state == "succeeded";
  EXPECT_EQ(succeeded, 1000);
  // The database, the events and the replies agree.
  EXPECT_EQ(count("select count(*) from jobs where pipeline = 'three'"), 1000);
  EXPECT_EQ(count("select count(*) from jobs where pipeline = 'three' and "
                  "state = 'succeeded'"),
            1000);
  EXPECT_EQ(count("select count(*) from stage_checkpoints s join jobs j using "
                  "(job_id) where j.pipeline = 'three'"),
            3000);
  EXPECT_EQ(count("select count(*) from job_events e join jobs j using "
                  "(job_id) where j.pipeline = 'three' and e.type = "
                  "'job.succeeded'"),
            1000);
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0) << node->output();
}

TEST_F(durable_path_test, StagesSeeThePayloadInCompactJson) {
  // A resumed job's payload comes back from PostgreSQL's jsonb, which
  // prints with spaces; scripts must see the same bytes either way.
  auto node = start_node("compact");
  auto nats = client();
  subjects subj{"troupe"};
  job_tracker tracker{nats, subj, "compact"};
  ASSERT_FALSE(tracker.start());
  auto replies = submit_requests(
      *nats, subj, {body("compact", "compact-1", {{"path", "x"}})}, 1, 30s);
  ASSERT_TRUE(replies && (*replies)[0].ok);
  tracker.submitted("compact-1");
  ASSERT_TRUE(tracker.wait_all(60s, {}));
  EXPECT_EQ(tracker.jobs()["compact-1"].state, "succeeded")
      << tracker.jobs()["compact-1"].error;
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0);
}

TEST_F(durable_path_test, TheSameKeySubmittedThreeTimesIsOneJobRunOnce) {
  auto node = start_node("idem");
  auto nats = client();
  subjects subj{"troupe"};
  job_tracker tracker{nats, subj, "three"};
  ASSERT_FALSE(tracker.start());
  std::vector<std::string> bodies(3, body("three", "order-42"));
  auto replies = submit_requests(*nats, subj, bodies, 1, 30s);
  ASSERT_TRUE(replies);
  for (auto& r : *replies) {
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.job_id, "order-42");
  }
  // Accepted: logged once, with its message's place in the stream, so
  // that a message the broker loses is published again (stranded sweeper).
  EXPECT_EQ(count("select count(*) from submissions where job_id = "
                  "'order-42' and pipeline = 'three' and stream_seq > 0"),
            1);
  tracker.submitted("order-42");
  ASSERT_TRUE(tracker.wait_all(60s, {}));
  std::this_thread::sleep_for(1s); // let any duplicate delivery show up
  EXPECT_EQ(count("select count(*) from jobs where job_id = 'order-42'"), 1);
  EXPECT_EQ(count("select count(*) from job_attempts where job_id = "
                  "'order-42'"),
            3);
  EXPECT_EQ(count("select count(*) from job_events where job_id = "
                  "'order-42' and type = 'job.started'"),
            1);
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0);
}

TEST_F(durable_path_test, AKilledNodeLosesNothingAndRunsNoCompletedStageTwice) {
  auto node = start_node("kill-1");
  auto nats = client();
  subjects subj{"troupe"};
  job_tracker tracker{nats, subj, "slow"};
  ASSERT_FALSE(tracker.start());
  std::vector<std::string> bodies;
  for (int i = 0; i < 200; ++i)
    bodies.push_back(body("slow", "slow-" + std::to_string(i)));
  auto replies = submit_requests(*nats, subj, bodies, 256, 60s);
  ASSERT_TRUE(replies);
  for (auto& r : *replies) {
    ASSERT_TRUE(r.ok);
    tracker.submitted(r.job_id);
  }
  // Kill it mid-pipeline: once some first stages completed.
  test::eventually(
      [&] {
        return count("select count(*) from stage_checkpoints where job_id like "
                     "'slow-%'") >= 60;
      },
      60s, 20ms);
  node->signal(SIGKILL);
  EXPECT_EQ(node->wait(10s), 128 + SIGKILL);
  auto done_before = count("select count(*) from jobs where job_id like "
                           "'slow-%' and state = 'succeeded'");
  EXPECT_LT(done_before, 200) << "the kill came too late to test anything";
  auto node2 = start_node("kill-2");
  // The database decides: an event may be lost with the killed node (it
  // publishes after the commit), a terminal row may not.
  test::eventually(
      [&] {
        return count("select count(*) from jobs where job_id like 'slow-%' and "
                     "state in ('succeeded', 'dead_lettered', 'cancelled')") >=
               200;
      },
      180s, 100ms);
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'slow-%' and "
                  "state = 'succeeded'"),
            200);
  // Every stage's side effect happened exactly once...
  EXPECT_EQ(count("select count(*) from side_effects where key like "
                  "'slow-%'"),
            400);
  // ...and no stage whose success was recorded ran again.
  EXPECT_EQ(count("select count(*) from (select job_id, stage_index from "
                  "job_attempts where job_id like 'slow-%' and ok group by "
                  "job_id, stage_index having count(*) > 1) d"),
            0);
  std::cout << "[ info ] killed with " << done_before
            << " of 200 jobs done; completed runs recorded: "
            << count("select count(*) from stage_runs where key like "
                     "'slow-%'")
            << " for 400 stages\n";
  node2->signal(SIGTERM);
  EXPECT_EQ(node2->wait(30s), 0);
}

TEST_F(durable_path_test, BadInputIsRejectedClearlyAndTheNodeKeepsServing) {
  auto node = start_node("bad");
  auto nats = client();
  subjects subj{"troupe"};
  std::vector<std::string> bodies = {
      "{not json",
      body("nope", ""),
      body("three", "", {{"blob", std::string(70000, 'x')}}),
  };
  auto replies = submit_requests(*nats, subj, bodies, 3, 30s);
  ASSERT_TRUE(replies);
  EXPECT_EQ((*replies)[0].error_code, "invalid_payload");
  EXPECT_EQ((*replies)[1].error_code, "unknown_pipeline");
  EXPECT_NE((*replies)[1].error_message.find("nope"), std::string::npos);
  EXPECT_EQ((*replies)[2].error_code, "payload_too_large");
  // Published straight to the stream: recorded and dead-lettered.
  ASSERT_TRUE(nats->js_publish("troupe.jobs.three", "{not json", "bad-json"));
  ASSERT_TRUE(nats->js_publish(
      "troupe.jobs.three", body("", "", {{"blob", std::string(66000, 'x')}}),
      "bad-size"));
  job_tracker tracker{nats, subj, "three"};
  ASSERT_FALSE(tracker.start());
  tracker.submitted("bad-json");
  tracker.submitted("bad-size");
  ASSERT_TRUE(nats->js_publish("troupe.jobs.three",
                               R"({"payload":{"fine":true}})", "good-after"));
  tracker.submitted("good-after");
  // For a pipeline no node runs: swept and dead-lettered, not left behind.
  job_tracker nope{nats, subj, "nope"};
  ASSERT_FALSE(nope.start());
  nope.submitted("bad-pipeline");
  ASSERT_TRUE(
      nats->js_publish("troupe.jobs.nope", R"({"payload":1})", "bad-pipeline"));
  ASSERT_TRUE(tracker.wait_all(60s, {})) << node->output();
  ASSERT_TRUE(nope.wait_all(60s, {})) << node->output();
  EXPECT_EQ(nope.jobs()["bad-pipeline"].state, "dead_lettered");
  EXPECT_EQ(count("select count(*) from jobs where job_id = 'bad-pipeline' "
                  "and pipeline = 'nope' and last_error like "
                  "'unknown_pipeline: no node runs pipeline%'"),
            1);
  auto jobs = tracker.jobs();
  EXPECT_EQ(jobs["bad-json"].state, "dead_lettered");
  EXPECT_EQ(jobs["bad-size"].state, "dead_lettered");
  EXPECT_EQ(jobs["good-after"].state, "succeeded");
  EXPECT_EQ(count("select count(*) from jobs where job_id = 'bad-json' and "
                  "state = 'dead_lettered' and last_error like "
                  "'invalid_payload%'"),
            1);
  EXPECT_EQ(count("select count(*) from dead_letters where job_id in "
                  "('bad-json', 'bad-size')"),
            2);
  EXPECT_TRUE(node->running());
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0);
}

TEST_F(durable_path_test, ASecondNodeWithALiveNodesIdIsRefused) {
  auto node = start_node("id-1");
  child_process twin{{TROUPE_BINARY, "node", "--config", dir_ + "/node.toml"},
                     dir_ + "/node-id-2.log"};
  EXPECT_EQ(twin.wait(60s), 2) << twin.output();
  EXPECT_NE(twin.output().find("node id 'itest-node' is already in use"),
            std::string::npos)
      << twin.output();
  EXPECT_TRUE(node->running());
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0);
}

TEST_F(durable_path_test, PostgresAndNatsOutagesDelayJobsButLoseNone) {
  auto node = start_node("outage");
  auto nats = client();
  subjects subj{"troupe"};
  std::vector<std::string> bodies;
  for (int i = 0; i < 300; ++i)
    bodies.push_back(body("steady", "steady-" + std::to_string(i)));
  auto replies = submit_requests(*nats, subj, bodies, 256, 60s);
  ASSERT_TRUE(replies);
  for (auto& r : *replies)
    ASSERT_TRUE(r.ok);
  auto terminal = [] {
    return count("select count(*) from jobs where job_id like 'steady-%' "
                 "and state in ('succeeded', 'dead_lettered', 'cancelled')");
  };
  test::eventually([&] { return terminal() >= 50; }, 60s, 20ms);
  // PostgreSQL goes away for a while: stages keep finishing, their commits
  // wait; nothing is dropped.
  auto before = terminal();
  servers_->pg().stop();
  std::this_thread::sleep_for(3s);
  ASSERT_FALSE(servers_->pg().start(dir_, servers_->pg_port()));
  // Then NATS restarts (JetStream keeps the stream on disk).
  std::this_thread::sleep_for(1s);
  servers_->nats().stop();
  std::this_thread::sleep_for(2s);
  ASSERT_FALSE(servers_->nats().start(dir_, servers_->nats_port()));
  test::eventually([&] { return terminal() >= 300; }, 180s, 100ms);
  std::cout << "[ info ] outages began with " << before
            << " of 300 jobs done\n";
  EXPECT_LT(before, 300) << "the outage came too late to test anything";
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'steady-%' "
                  "and state = 'succeeded'"),
            300)
      << node->output();
  EXPECT_EQ(count("select count(*) from (select job_id, stage_index from "
                  "job_attempts where job_id like 'steady-%' and ok group by "
                  "job_id, stage_index having count(*) > 1) d"),
            0);
  EXPECT_TRUE(node->running());
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(60s), 0) << node->output();
}

// Chaos seed 3 (session 18): the broker lost a pipeline's consumer while
// resetting its stream; the nodes' unrouted sweepers took the live
// pipeline's jobs for unrouted and dead-lettered them, and the intakes
// failed to fetch until the end. Now the node's own pipelines are never
// swept and an intake whose consumer is gone makes it again.
TEST_F(durable_path_test, AConsumerTheBrokerLostIsMadeAgainAndItsJobsRun) {
  auto node = start_node("lost-consumer");
  auto nats = client();
  subjects subj{"troupe"};
  job_tracker tracker{nats, subj, "three"};
  ASSERT_FALSE(tracker.start());
  ASSERT_TRUE(nats->js_publish("troupe.jobs.three", body("three", ""),
                               "lost-consumer-before"));
  tracker.submitted("lost-consumer-before");
  ASSERT_TRUE(tracker.wait_all(60s, {})) << node->output();
  nats->delete_consumer("TROUPE_JOBS", "troupe_three");
  ASSERT_EQ(nats->consumer_exists("TROUPE_JOBS", "troupe_three"),
            caf::expected<bool>{false});
  for (int i = 0; i < 5; ++i) {
    auto id = "lost-consumer-" + std::to_string(i);
    ASSERT_TRUE(nats->js_publish("troupe.jobs.three", body("three", ""), id));
    tracker.submitted(id);
  }
  ASSERT_TRUE(tracker.wait_all(60s, {})) << node->output();
  for (auto& [id, job] : tracker.jobs())
    EXPECT_EQ(job.state, "succeeded") << id;
  EXPECT_EQ(count("select count(*) from jobs where job_id like "
                  "'lost-consumer-%' and state = 'succeeded'"),
            6);
  EXPECT_EQ(count("select count(*) from jobs where last_error like "
                  "'unknown_pipeline: no node runs pipeline ''three''%'"),
            0);
  EXPECT_NE(node->output().find("troupe_three was gone"), std::string::npos);
  EXPECT_TRUE(node->running());
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0);
}
