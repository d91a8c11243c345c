// Priorities order work: a pipeline with `priorities = true` has a high
// band (its own subject and consumer) that every intake drains first.
#include <csignal>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "scheduling_fixture.hpp"
#include "tests/support/eventually.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

/// Publishes `n` jobs straight onto a subject (core NATS: the stream
/// stores them), as a service in any language may.
void publish_plain(nats_client& nats, const std::string& subject, int n,
                   const std::string& id_prefix) {
  for (int i = 0; i < n; ++i) {
    auto body = R"({"payload":{"i":)" + std::to_string(i) + "}}";
    ASSERT_TRUE(nats.js_publish(subject, body, id_prefix + std::to_string(i)));
  }
}

} // namespace

// "Unique for a period": a key names one job for as long as its row
// exists, so a pipeline's retention is the period. Within it the same key
// is a duplicate (long past JetStream's duplicate window, 1 s here); once
// the finished job is pruned, the key runs a new job.
TEST_F(scheduling_test, AKeyIsUniqueForItsPipelinesRetentionThenFreeAgain) {
  auto nats = client();
  ASSERT_TRUE(nats);
  auto node = start_node("unique-1");
  auto submit = [&] {
    auto r = nats->request(
        "troupe.api.v1.submit",
        R"({"pipeline":"once","key":"daily-report","payload":{}})", 5000);
    EXPECT_TRUE(r) << describe(r.error());
    return r ? nlohmann::json::parse(*r) : nlohmann::json{};
  };
  ASSERT_TRUE(submit().value("ok", false));
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id = 'daily-report' "
                 "and state = 'succeeded'") == 1;
  }));
  std::this_thread::sleep_for(1200ms); // past the duplicate window
  EXPECT_TRUE(submit().value("duplicate", false));
  // Past the pipeline's retention (2 s after it finished), pruned: free.
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id = 'daily-report' "
                 "and finished_at < now() - interval '2 seconds'") == 1;
  }));
  auto pruned = nats->request("troupe.admin.any.control.prune", "{}", 10000);
  ASSERT_TRUE(pruned && pruned->find("\"ok\":true") != std::string::npos);
  EXPECT_EQ(count("select count(*) from jobs where job_id = 'daily-report'"),
            0);
  auto again = submit();
  EXPECT_TRUE(again.value("ok", false)) << again.dump();
  EXPECT_FALSE(again.value("duplicate", false)) << again.dump();
  EXPECT_TRUE(eventually([&] {
    return count("select count(*) from job_attempts where job_id = "
                 "'daily-report'") == 1 &&
           count("select count(*) from jobs where job_id = 'daily-report' "
                 "and state = 'succeeded'") == 1;
  }));
}

// The same key published straight onto the stream again, past JetStream's
// duplicate window, while its job runs on another node: that node's claim
// must not take the job from the run that holds it (epoch 1, one attempt).
// `solo` runs one job per node, so the second message goes to the second
// node, whose claim is what is tested.
TEST_F(scheduling_test, ADirectPublishOfARunningJobsKeyRunsNothingNew) {
  auto nats = client();
  ASSERT_TRUE(nats);
  auto first = start_node("solo-a");
  ASSERT_TRUE(
      nats->js_publish("troupe.jobs.solo", R"({"payload":{}})", "solo-key"));
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id = 'solo-key' and "
                 "state = 'running' and lease_owner like 'solo-a#%'") == 1;
  }));
  auto second = start_node("solo-b");
  std::this_thread::sleep_for(1200ms); // past the duplicate window (1 s)
  ASSERT_TRUE(
      nats->js_publish("troupe.jobs.solo", R"({"payload":{}})", "solo-key"));
  ASSERT_TRUE(eventually(
      [&] {
        return count("select count(*) from jobs where job_id = 'solo-key' "
                     "and state = 'succeeded'") == 1;
      },
      30s));
  EXPECT_EQ(count("select count(*) from jobs where job_id = 'solo-key' and "
                  "epoch = 1 and lease_owner like 'solo-a#%'"),
            1);
  EXPECT_EQ(count("select count(*) from job_attempts where job_id = "
                  "'solo-key'"),
            1);
  // Both messages were acked: nothing is left in the stream.
  EXPECT_TRUE(eventually(
      [&] {
        jsStreamInfo* si = nullptr;
        jsErrCode jerr = static_cast<jsErrCode>(0);
        if (js_GetStreamInfo(&si, nats->js(), "TROUPE_JOBS", nullptr, &jerr) !=
            NATS_OK)
          return false;
        auto left = si->State.Msgs;
        jsStreamInfo_Destroy(si);
        return left == 0;
      },
      20s));
  EXPECT_TRUE(second->running());
}

// The issue's case: a backlog of 5,000 low jobs, then 100 high ones
// (half through the API with a priority, half published on the high
// subject): every high job finishes before the median low job.
TEST_F(scheduling_test, HighPriorityJobsOvertakeABacklog) {
  auto nats = client();
  ASSERT_TRUE(nats);
  const int low = full() ? 5000 : 3000;
  auto node = start_node("n1");
  auto pause = [&](const char* verb) {
    auto reply = nats->request(std::string{"troupe.admin.any.control."} + verb,
                               R"({"pipeline":"ranked"})", 5000);
    ASSERT_TRUE(reply) << describe(reply.error());
    ASSERT_NE(reply->find("\"ok\":true"), std::string::npos) << *reply;
  };
  // The backlog waits in the stream while the pipeline is paused.
  ASSERT_NO_FATAL_FAILURE(pause("pause"));
  publish_plain(*nats, "troupe.jobs.ranked", low, "lo-");
  ASSERT_NO_FATAL_FAILURE(pause("unpause"));
  // Let it start moving before the high jobs arrive.
  ASSERT_TRUE(eventually(
      [&] {
        return count("select count(*) from jobs where pipeline = 'ranked' "
                     "and state = 'succeeded'") > 100;
      },
      60s));
  for (int i = 0; i < 50; ++i) {
    nlohmann::json req{{"pipeline", "ranked"},
                       {"payload", {{"i", i}}},
                       {"key", "hi-api-" + std::to_string(i)},
                       {"priority", 5}};
    auto reply = nats->request("troupe.api.v1.submit", req.dump(), 5000);
    ASSERT_TRUE(reply) << describe(reply.error());
    ASSERT_NE(reply->find("\"ok\":true"), std::string::npos) << *reply;
  }
  publish_plain(*nats, "troupe.jobs.ranked.high", 50, "hi-direct-");
  // A delayed high job waits in the store; the scheduler publishes it to
  // the band too.
  auto delayed = nats->request(
      "troupe.api.v1.submit",
      R"({"pipeline":"ranked","payload":{},"key":"hi-delayed","priority":5,)"
      R"("delay_ms":300})",
      5000);
  ASSERT_TRUE(delayed && delayed->find("\"ok\":true") != std::string::npos);
  ASSERT_TRUE(eventually(
      [&] {
        return count("select count(*) from jobs where pipeline = 'ranked' "
                     "and state = 'succeeded'") == low + 101;
      },
      120s, 200ms));
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'hi-%' and "
                  "state = 'succeeded'"),
            101);
  // 100 handed out once each, and the delayed one twice when its
  // submission was fetched before it was due (acked as scheduled, then the
  // scheduler's publication), once when it was fetched after (run at once:
  // behind 100 high jobs on a busy node, 300 ms can pass).
  auto high = deliveries(*nats, "ranked_high");
  EXPECT_TRUE(high == 101 || high == 102) << high;
  // The last high job ended before the median low job.
  std::cout << "the last high job ended after "
            << count("select count(*) from jobs where job_id like 'lo-%' and "
                     "finished_at < (select max(finished_at) from jobs where "
                     "job_id like 'hi-%' and job_id <> 'hi-delayed')")
            << " of " << low << " low jobs\n";
  EXPECT_EQ(count("select ((select max(finished_at) from jobs where job_id "
                  "like 'hi-%' and job_id <> 'hi-delayed') < (select "
                  "percentile_disc(0.5) within group "
                  "(order by finished_at) from jobs where job_id like "
                  "'lo-%'))::int"),
            1)
      << count("select count(*) from jobs where job_id like 'lo-%' and "
               "finished_at > (select max(finished_at) from jobs where "
               "job_id like 'hi-%' and job_id <> 'hi-delayed')")
      << " low jobs ended after the last high one, of " << low;
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0);
}
