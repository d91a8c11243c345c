// `troupe shell` against a live two-node cluster (real nats-server with
// JetStream, real PostgreSQL), driven as an operator or a script would: the
// real binary with `-c ... --json`. The interactive mode (through a
// pseudo-terminal) is in shell_interactive_test.cpp.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "runtime/nats/stream_messages.hpp"
#include "tests/runtime/shell_fixture.hpp"
#include "tests/support/db_probe.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

TEST_F(shell_test, NodesAndPipelinesShowTheWholeCluster) {
  auto nodes = ok("nodes");
  ASSERT_EQ(nodes["nodes"].size(), 2u) << nodes.dump();
  std::set<std::string> ids;
  for (auto& n : nodes["nodes"]) {
    ids.insert(n["node_id"].get<std::string>());
    EXPECT_EQ(n["state"], "up");
    EXPECT_GT(n["uptime_ms"].get<std::int64_t>(), 0);
    EXPECT_TRUE(n.contains("capacity"));
  }
  EXPECT_EQ(ids, (std::set<std::string>{"sh-a", "sh-b"}));
  auto pipes = ok("pipelines");
  for (auto p : {"fixable", "waiting", "gated", "long", "listed"}) {
    ASSERT_TRUE(pipes["pipelines"].contains(p)) << pipes.dump();
    EXPECT_EQ(pipes["pipelines"][p]["nodes"], 2) << p;
    EXPECT_EQ(pipes["pipelines"][p]["paused"], false) << p;
  }
  auto [rc, help] = shell("help; help replay");
  EXPECT_EQ(rc, 0);
  ASSERT_EQ(help.size(), 2u);
  EXPECT_GT(help[0]["commands"].size(), 15u);
  EXPECT_EQ(help[1]["command_help"], "replay");
}

TEST_F(shell_test, ADeadLetterIsFoundReplayedAfterTheFixAndKeepsBothLives) {
  auto id = submit("fixable", {{"doc", 1}});
  ASSERT_TRUE(wait_state(id, "dead_lettered"));
  auto dlq = ok("dlq --pipeline fixable");
  bool found = false;
  for (auto& d : dlq["dead_letters"])
    if (d["job_id"] == id) {
      found = true;
      EXPECT_EQ(d["stage"], "work");
      EXPECT_EQ(d["failed_stage"], 1);
      EXPECT_NE(d["last_error"].get<std::string>().find("broken"),
                std::string::npos);
    }
  ASSERT_TRUE(found) << dlq.dump();
  // Replaying before the fix dies again: life 2, still a dead letter.
  write_file(dir_ + "/fixed", "");
  auto replay = ok("replay " + id);
  EXPECT_EQ(replay["life"], 2);
  EXPECT_EQ(replay["from_stage"], 1);
  ASSERT_TRUE(wait_state(id, "succeeded")) << state_of(id);
  auto job = ok("job " + id);
  EXPECT_EQ(job["job"]["state"], "succeeded");
  EXPECT_EQ(job["job"]["life"], 2);
  EXPECT_EQ(job["job"]["result"], (json{{"fixed", true}}));
  ASSERT_EQ(job["stages"].size(), 2u) << job.dump();
  auto& work = job["stages"][1];
  EXPECT_EQ(work["name"], "work");
  ASSERT_EQ(work["attempts"].size(), 2u) << work.dump();
  EXPECT_EQ(work["attempts"][0]["life"], 1);
  EXPECT_EQ(work["attempts"][0]["ok"], false);
  EXPECT_EQ(work["attempts"][0]["error"]["code"], "exit_code");
  EXPECT_EQ(work["attempts"][1]["life"], 2);
  EXPECT_EQ(work["attempts"][1]["ok"], true);
  // The completed first stage was not run again in the second life.
  EXPECT_EQ(job["stages"][0]["attempts"].size(), 1u);
  std::vector<std::string> types;
  for (auto& e : job["events"])
    types.push_back(e["type"]);
  EXPECT_NE(std::find(types.begin(), types.end(), "job.dead_lettered"),
            types.end());
  EXPECT_NE(std::find(types.begin(), types.end(), "job.replayed"), types.end());
  EXPECT_EQ(types.back(), "job.succeeded");
  // It left the dead-letter list; replaying a succeeded job is refused.
  // Named: a range-for over ok(...)["..."] would iterate a member of a
  // temporary already destroyed (ASan: heap-use-after-free).
  auto after = ok("dlq");
  for (auto& d : after["dead_letters"])
    EXPECT_NE(d["job_id"], id);
  auto [rc, docs] = shell("replay " + id);
  EXPECT_EQ(rc, 1);
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0]["error"]["code"], "conflict");
  std::remove((dir_ + "/fixed").c_str());
}

TEST_F(shell_test, ReplayAllReportsHowManyAndRetryStartsFromAStage) {
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(submit("fixable", {{"bulk", i}}));
  for (auto& id : ids)
    ASSERT_TRUE(wait_state(id, "dead_lettered"));
  auto all = ok("replay --all --pipeline fixable");
  EXPECT_GE(all["replayed"].get<int>(), 3) << all.dump();
  EXPECT_TRUE(all["failed"].empty());
  for (auto& id : ids) // not fixed: each dies again, in life 2
    ASSERT_TRUE(wait_state(id, "dead_lettered"));
  write_file(dir_ + "/fixed", "");
  auto retry = ok("retry " + ids[0] + " --from-stage prepare");
  EXPECT_EQ(retry["from_stage"], 0);
  EXPECT_EQ(retry["life"], 3);
  ASSERT_TRUE(wait_state(ids[0], "succeeded"));
  auto job = ok("job " + ids[0]);
  // prepare ran again in life 3 because the retry started there.
  EXPECT_EQ(job["stages"][0]["attempts"].size(), 2u) << job.dump();
  std::remove((dir_ + "/fixed").c_str());
}

TEST_F(shell_test, CancelReachesAJobWaitingForARetryInTheStore) {
  // Ten-minute waits are kept in PostgreSQL (node.store_retry_after): no
  // node holds them, and a cancel from any node ends them for good.
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i)
    ids.push_back(submit("waiting", {{"i", i}}));
  for (auto& id : ids)
    ASSERT_TRUE(wait_state(id, "retrying"));
  for (auto& id : ids) {
    auto c = ok("cancel " + id);
    EXPECT_EQ(c["state"], "cancelled") << c.dump();
    EXPECT_EQ(c["was"], "retrying");
    EXPECT_TRUE(c["by_node"].is_null()) << c.dump();
    EXPECT_EQ(state_of(id), "cancelled");
  }
  EXPECT_EQ(count("select count(*) from jobs where run_at is not null and "
                  "job_id in ('" +
                  ids[0] + "', '" + ids[5] + "')"),
            0);
  // The job actors are gone from the live tree.
  auto tree = ok("tree all");
  for (auto& n : tree["nodes"])
    for (auto& p : n["pipelines"])
      if (p["pipeline"] == "waiting") {
        EXPECT_TRUE(p["jobs"].empty()) << p.dump();
      }
  auto [rc, docs] = shell("cancel " + ids[0]);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(docs.at(0)["error"]["code"], "conflict");
}

TEST_F(shell_test, RetrySkipsTheWaitOfAJobWaitingForItsRetry) {
  auto id = submit("waiting", {{"retry", true}});
  ASSERT_TRUE(wait_state(id, "retrying"));
  auto r = ok("retry " + id);
  EXPECT_EQ(r["action"], "retry_now") << r.dump();
  ASSERT_TRUE(wait_state(id, "succeeded", 20s));
  auto job = ok("job " + id);
  EXPECT_EQ(job["stages"][0]["attempts"].size(), 2u);
}

TEST_F(shell_test, CancelOfAJobStillInTheStreamLeavesATombstone) {
  ok("pause gated");
  auto id = submit("gated", {{"never", "runs"}});
  auto [rc, docs] = shell("cancel " + id);
  EXPECT_EQ(rc, 1) << "no node has seen it: the shell asks for the pipeline";
  EXPECT_NE(
      docs.at(0)["error"]["message"].get<std::string>().find("--pipeline"),
      std::string::npos);
  auto c = ok("cancel " + id + " --pipeline gated");
  EXPECT_EQ(c["was"], "unseen");
  ok("unpause gated");
  // Delivered now, found terminal, acked: it never runs, not even ahead of
  // its first write (the intake sees the row, so the job claims first).
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(state_of(id), "cancelled");
  EXPECT_EQ(
      count("select count(*) from job_attempts where job_id = '" + id + "'"),
      0);
  std::ifstream runs{dir_ + "/gated.runs"};
  std::string seen{std::istreambuf_iterator<char>{runs}, {}};
  EXPECT_EQ(seen.find(id), std::string::npos) << "the cancelled job ran";
}

TEST_F(shell_test, AJobCancelledBeforeItIsPublishedNeverRuns) {
  // The tombstone comes first; the job's first delivery is then fresh, and
  // must still not run ahead of its first write (speculation): the intake
  // sees the row and the job claims first.
  std::string id = "tomb-before-publish";
  auto c = ok("cancel " + id + " --pipeline gated");
  EXPECT_EQ(c["was"], "unseen");
  EXPECT_EQ(submit("gated", {{"never", "runs"}}, id), id);
  // A job published after it runs: the pipeline is live.
  auto after = submit("gated", {{"runs", true}});
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (state_of(after) != "succeeded" &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(state_of(after), "succeeded");
  // Two nodes fetch in parallel: give the other one time to have run it,
  // had it been going to.
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(state_of(id), "cancelled");
  std::ifstream runs{dir_ + "/gated.runs"};
  std::string seen{std::istreambuf_iterator<char>{runs}, {}};
  EXPECT_NE(seen.find(after), std::string::npos);
  EXPECT_EQ(seen.find(id), std::string::npos) << "the cancelled job ran";
}

TEST_F(shell_test, PauseStopsFetchingOnEveryNodeUntilUnpaused) {
  auto p = ok("pause gated");
  EXPECT_EQ(p["paused"], true);
  EXPECT_EQ(p["applied_by"].size(), 2u) << p.dump();
  auto pipes = ok("pipelines");
  EXPECT_EQ(pipes["pipelines"]["gated"]["paused"], true);
  EXPECT_EQ(pipes["pipelines"]["gated"]["paused_on"].size(), 2u)
      << pipes.dump();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i)
    ids.push_back(submit("gated", {{"i", i}}));
  std::this_thread::sleep_for(2s);
  for (auto& id : ids)
    EXPECT_EQ(state_of(id), "") << "a paused pipeline fetched " << id;
  auto u = ok("unpause gated");
  EXPECT_EQ(u["paused"], false);
  for (auto& id : ids)
    EXPECT_TRUE(wait_state(id, "succeeded"));
}

TEST_F(shell_test, TreeShowsARunningJobsStageActor) {
  auto id = submit("long");
  ASSERT_TRUE(wait_state(id, "running"));
  json seen;
  for (int i = 0; i < 40 && seen.is_null(); ++i) {
    auto tree = ok("tree all");
    for (auto& n : tree["nodes"])
      for (auto& p : n["pipelines"])
        for (auto& j : p["jobs"])
          if (j["job_id"] == id && j["stage_actor"].get<std::uint64_t>() > 0)
            seen = j;
    if (seen.is_null())
      std::this_thread::sleep_for(100ms);
  }
  ASSERT_FALSE(seen.is_null());
  EXPECT_EQ(seen["state"], "running");
  EXPECT_EQ(seen["stage"], "nap");
  EXPECT_EQ(seen["attempt"], 1);
  EXPECT_GT(seen["actor"].get<std::uint64_t>(), 0u);
  // The same through one node's own subject.
  auto holder = ok("job " + id)["job"]["lease_owner"].get<std::string>();
  auto one = ok("tree " + holder);
  EXPECT_EQ(one["nodes"][0]["node"], holder);
  ASSERT_TRUE(wait_state(id, "succeeded"));
}

TEST_F(shell_test, WatchStreamsLiveEvents) {
  child_process watcher{{TROUPE_BINARY, "shell", "--nats", servers_->nats_url(),
                         "--json", "-c",
                         "watch --pipeline listed --count 4 --for 30s"},
                        dir_ + "/watch.log"};
  std::this_thread::sleep_for(700ms); // subscribed before the job starts
  auto id = submit("listed");
  ASSERT_EQ(watcher.wait(40s), 0) << watcher.output();
  auto doc = json::parse(watcher.output(), nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << watcher.output();
  ASSERT_EQ(doc["events"].size(), 4u);
  EXPECT_EQ(doc["events"][0]["type"], "job.started");
  EXPECT_EQ(doc["events"][3]["type"], "job.succeeded");
  for (auto& e : doc["events"])
    EXPECT_EQ(e["job_id"], id);
}

TEST_F(shell_test, JobsFilterAndPaginate) {
  std::set<std::string> submitted;
  for (int i = 0; i < 5; ++i)
    submitted.insert(submit("listed", {{"page", i}}));
  for (auto& id : submitted)
    ASSERT_TRUE(wait_state(id, "succeeded"));
  std::set<std::string> listed;
  std::string after;
  int pages = 0;
  do {
    auto page = ok("jobs --pipeline listed --state succeeded --limit 2" +
                   (after.empty() ? "" : " --after " + after));
    ++pages;
    EXPECT_LE(page["jobs"].size(), 2u);
    for (auto& j : page["jobs"]) {
      EXPECT_EQ(j["pipeline"], "listed");
      EXPECT_TRUE(listed.insert(j["job_id"].get<std::string>()).second)
          << "a job on two pages";
    }
    after = page["next"].is_string() ? page["next"].get<std::string>() : "";
  } while (!after.empty() && pages < 20);
  for (auto& id : submitted)
    EXPECT_TRUE(listed.count(id)) << id;
  EXPECT_GE(pages, 3);
  EXPECT_TRUE(ok("jobs --pipeline listed --since 1h")["jobs"].size() >= 5);
  auto stats = ok("stats");
  EXPECT_GE(stats["totals"]["jobs"]["succeeded"].get<int>(), 5);
}

TEST_F(shell_test, MistakesGetAOneLineErrorAndANonZeroExit) {
  auto [rc1, d1] = shell("frobnicate");
  EXPECT_EQ(rc1, 1);
  EXPECT_EQ(d1.at(0)["error"]["code"], "unknown_command");
  auto [rc2, d2] = shell("jobs --colour red");
  EXPECT_EQ(rc2, 1);
  EXPECT_EQ(d2.at(0)["error"]["code"], "bad_flag");
  auto [rc3, d3] = shell("job no-such-job");
  EXPECT_EQ(rc3, 1);
  EXPECT_EQ(d3.at(0)["error"]["code"], "unknown_job");
  EXPECT_NE(d3[0]["error"]["message"].get<std::string>().find("try:"),
            std::string::npos);
  auto [rc4, d4] = shell("jobs --state exploded");
  EXPECT_EQ(rc4, 1);
  EXPECT_EQ(d4.at(0)["error"]["code"], "invalid_request");
  // A failing command does not stop the next one; the exit code reports it.
  auto [rc5, d5] = shell("frobnicate; nodes");
  EXPECT_EQ(rc5, 1);
  ASSERT_EQ(d5.size(), 2u);
  EXPECT_EQ(d5[1]["ok"], true);
  // Unreachable NATS: one clear line, no hang.
  child_process sh{
      {TROUPE_BINARY, "shell", "--nats", "nats://127.0.0.1:1", "-c", "nodes"},
      dir_ + "/unreachable.log"};
  EXPECT_EQ(sh.wait(30s), 1);
  auto out = sh.output();
  EXPECT_NE(out.find("cannot reach NATS at nats://127.0.0.1:1"),
            std::string::npos)
      << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

// What nats-server 2.9.10 left after a replica reset (chaos seed 182):
// messages of ended jobs that no consumer hands out. Here a paused pipeline
// keeps them in the stream the same way. `tidy` deletes only those whose
// job PostgreSQL holds ended in the message's own pipeline, and only once
// no ack of them can be on its way.
TEST_F(shell_test, TidyDeletesOnlyTheMessagesOfEndedJobs) {
  ok("pause tidied");
  count("with x as (insert into jobs (job_id, pipeline, state, payload) "
        "values ('tidy-ended', 'tidied', 'succeeded', '1'), "
        "('tidy-elsewhere', 'listed', 'succeeded', '1') returning 1) "
        "select count(*) from x");
  auto nats = connect_client(servers_->nats_url());
  ASSERT_TRUE(nats);
  for (auto id : {"tidy-ended", "tidy-elsewhere", "tidy-new"})
    ASSERT_TRUE(nats->js_publish("troupe.jobs.tidied", R"({"payload":1})", id));
  auto held = [&] {
    auto n = stored_per_subject(*nats, "TROUPE_JOBS", "troupe.jobs.tidied");
    return n ? (*n)["troupe.jobs.tidied"] : 999u;
  };
  ASSERT_EQ(held(), 3u);
  // Too young by default (duplicate window + ack_wait + 5 s): none is taken.
  auto young = ok("tidy");
  EXPECT_EQ(young["ended"], 0) << young.dump();
  EXPECT_EQ(young["deleted"], 0);
  auto dry = ok("tidy --dry-run --older-than 0s");
  EXPECT_EQ(dry["ended"], 1) << dry.dump();
  EXPECT_EQ(dry["deleted"], 0);
  ASSERT_EQ(dry["messages"].size(), 1u);
  EXPECT_EQ(dry["messages"][0].get<std::string>().rfind("tidy-ended@", 0), 0u);
  EXPECT_EQ(held(), 3u);
  auto done = ok("tidy --older-than 0s");
  EXPECT_EQ(done["deleted"], 1) << done.dump();
  EXPECT_GE(done["examined"].get<int>(), 3);
  EXPECT_EQ(held(), 2u);
  // A careless client's request is refused whole, naming the field.
  auto bad = nats->request("troupe.admin.any.control.tidy",
                           R"({"older_than_ms":-5})", 5000);
  ASSERT_TRUE(bad);
  auto refusal = json::parse(*bad, nullptr, false);
  EXPECT_EQ(refusal["error"]["code"], "invalid_request") << *bad;
  bad = nats->request("troupe.admin.any.control.tidy", R"({"dry_run":"yes"})",
                      5000);
  ASSERT_TRUE(bad);
  EXPECT_NE(bad->find("dry_run"), std::string::npos) << *bad;
  EXPECT_EQ(held(), 2u);
  // The rest is handed out once the pipeline runs again: the new job runs,
  // the other pipeline's job is left as it was.
  ok("unpause tidied");
  EXPECT_TRUE(wait_state("tidy-new", "succeeded")) << state_of("tidy-new");
  EXPECT_EQ(count("select count(*) from jobs where job_id = 'tidy-elsewhere' "
                  "and pipeline = 'listed' and state = 'succeeded'"),
            1);
  EXPECT_EQ(state_of("tidy-ended"), "succeeded");
}
