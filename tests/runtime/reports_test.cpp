// What a running stage tells the world, through the results suite's node
// (results_fixture.hpp): progress on descriptor 3 in events, the store and
// the jobs list; heartbeat timeouts and their details; SIGTERM before
// SIGKILL; and the publisher's trace context in the stage's environment,
// every event and every log line of the job.
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "results_fixture.hpp"
#include "runtime/client/api_requests.hpp"
#include "runtime/nats/nats_subscription.hpp"
#include "tests/support/eventually.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

TEST_F(results_test, AnExecStageReportsProgressOnDescriptorThree) {
  auto pub = publisher();
  ASSERT_TRUE(pub);
  std::mutex mtx;
  std::vector<json> progress;
  auto sub =
      nats_subscription::open(*pub, "troupe.events.report.>", [&](nats_msg m) {
        auto e = json::parse(m.data());
        std::lock_guard<std::mutex> g{mtx};
        if (e["type"] == "stage.progress")
          progress.push_back(e);
      });
  ASSERT_TRUE(sub);
  auto id = submit(*pub, "troupe.api.v1.submit",
                   {{"pipeline", "report"}, {"payload", 1}});
  auto r = ask(*pub, "troupe.api.v1.wait", {{"job_id", id}}, 40s);
  ASSERT_TRUE(r.value("ok", false)) << r;
  EXPECT_EQ(r["job"]["result"], json({{"n", 10}}));
  // The last report (100 %) is stored and shown by status.
  EXPECT_EQ(r["job"]["progress"]["progress"], 1);
  EXPECT_EQ(r["job"]["progress"]["message"], "done");
  auto stored =
      json::parse(row("select progress::text from jobs where job_id = $1", id));
  EXPECT_EQ(stored["message"], "done");
  ASSERT_TRUE(eventually(
      [&] {
        std::lock_guard<std::mutex> g{mtx};
        return !progress.empty() &&
               progress.back()["progress"]["progress"] == 1;
      },
      10s));
  std::lock_guard<std::mutex> g{mtx};
  // Ten reports over about a second, published at most once a second (and
  // the final one at once): a few events, not ten.
  EXPECT_LE(progress.size(), 4u);
  EXPECT_EQ(progress.front()["stage"], "steps");
}

TEST_F(results_test, TheJobsListShowsARunningJobsProgress) {
  auto pub = publisher();
  auto viewer = as("viewer", role_servers::viewer_pw);
  auto admin = as("admin", role_servers::admin_pw);
  ASSERT_TRUE(pub && viewer && admin);
  auto id = submit(*pub, "troupe.api.v1.submit",
                   {{"pipeline", "halfway"}, {"payload", 1}});
  json listed;
  EXPECT_TRUE(eventually([&] {
    auto r = ask(*viewer, "troupe.admin.any.read.jobs",
                 {{"pipeline", "halfway"}}, 5s);
    for (auto& j : r["result"]["jobs"])
      if (j["job_id"] == id && j["progress"].is_number())
        listed = j;
    return listed.is_object();
  })) << "no progress in the jobs list: "
      << ask(*viewer, "troupe.admin.any.read.jobs", {{"pipeline", "halfway"}},
             5s);
  EXPECT_EQ(listed["state"], "running");
  EXPECT_DOUBLE_EQ(listed["progress"].get<double>(), 0.4);
  auto c = ask(*admin, "troupe.admin.any.control.cancel", {{"job_id", id}});
  EXPECT_TRUE(c.value("ok", false)) << c;
}

TEST_F(results_test, ATraceStartedByThePublisherRunsThroughTheJob) {
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string tp = "00-" + trace + "-00f067aa0ba902b7-01";
  auto pub = publisher();
  ASSERT_TRUE(pub);
  std::mutex mtx;
  std::vector<json> events;
  auto sub =
      nats_subscription::open(*pub, "troupe.events.trace.>", [&](nats_msg m) {
        std::lock_guard<std::mutex> g{mtx};
        events.push_back(json::parse(m.data()));
      });
  ASSERT_TRUE(sub);
  auto id = submit(*pub, "troupe.api.v1.submit",
                   {{"pipeline", "trace"},
                    {"payload", 1},
                    {"traceparent", tp},
                    {"tracestate", "vendor=x1"}});
  auto r = ask(*pub, "troupe.api.v1.wait", {{"job_id", id}}, 40s);
  ASSERT_EQ(r["job"]["state"], "succeeded") << r;
  // The stage's environment: the same trace, the attempt's span as parent.
  std::string seen = r["job"]["result"]["tp"];
  EXPECT_EQ(seen.substr(0, 36), tp.substr(0, 36));
  EXPECT_NE(seen.substr(36, 16), "00f067aa0ba902b7");
  EXPECT_EQ(r["job"]["result"]["ts"], "vendor=x1");
  // Every event of the job names the trace.
  ASSERT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> g{mtx};
    return events.size() >= 4; // job.started, stage.*, job.succeeded
  }));
  {
    std::lock_guard<std::mutex> g{mtx};
    for (auto& e : events)
      EXPECT_EQ(e.value("trace_id", ""), trace) << e;
  }
  // So does every log line about the job.
  std::istringstream log{read_file(dir_ + "/node.log")};
  int lines = 0;
  for (std::string line; std::getline(log, line);) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_object() || j.value("job_id", "") != id)
      continue;
    ++lines;
    EXPECT_EQ(j.value("trace_id", ""), trace) << line;
  }
  EXPECT_GE(lines, 3);
  // The collector got the job's span, under the publisher's span, and the
  // attempt's, under the job's (posted within about a second).
  json job_span, stage_span;
  EXPECT_TRUE(eventually([&] {
    for (auto& sp : collector_->spans())
      if (sp["traceId"] == trace)
        (sp["name"] == "job trace" ? job_span : stage_span) = sp;
    return job_span.is_object() && stage_span.is_object();
  })) << collector_->spans().size()
      << " spans";
  EXPECT_EQ(job_span["parentSpanId"], "00f067aa0ba902b7");
  EXPECT_EQ(stage_span["parentSpanId"], job_span["spanId"]);
  EXPECT_EQ(stage_span["spanId"], seen.substr(36, 16));
  EXPECT_EQ(stage_span["name"], "stage show");
  EXPECT_EQ(job_span["status"]["code"], 1);
  EXPECT_LE(std::stoull(job_span["startTimeUnixNano"].get<std::string>()),
            std::stoull(stage_span["startTimeUnixNano"].get<std::string>()));
  // A malformed traceparent is refused with a clear error.
  auto bad = ask(*pub, "troupe.api.v1.submit",
                 {{"pipeline", "trace"}, {"payload", 1}, {"traceparent", "x"}});
  EXPECT_EQ(bad["error"]["code"], "invalid_payload") << bad;
}

TEST_F(results_test, ASilentExecStageFailsAtItsHeartbeatTimeoutAndResumes) {
  auto pub = publisher();
  ASSERT_TRUE(pub);
  auto id = submit(*pub, "troupe.api.v1.submit",
                   {{"pipeline", "resume"}, {"payload", 1}});
  auto r = ask(*pub, "troupe.api.v1.wait", {{"job_id", id}}, 40s);
  ASSERT_TRUE(r.value("ok", false)) << r;
  EXPECT_EQ(r["job"]["state"], "succeeded");
  // The second attempt saw the first one's heartbeat details.
  EXPECT_EQ(r["job"]["result"], json({{"resumed", true}}));
  EXPECT_EQ(row("select error_code from job_attempts where job_id = $1 "
                "and attempt = 1",
                id),
            "heartbeat_timeout");
}

TEST_F(results_test, AStageOutOfTimeGetsSigtermBeforeSigkill) {
  auto pub = publisher();
  ASSERT_TRUE(pub);
  auto id = submit(*pub, "troupe.api.v1.submit",
                   {{"pipeline", "term"}, {"payload", 1}});
  auto r = ask(*pub, "troupe.api.v1.wait", {{"job_id", id}}, 40s);
  ASSERT_TRUE(r.value("ok", false)) << r;
  EXPECT_EQ(r["job"]["state"], "dead_lettered");
  EXPECT_EQ(r["job"]["error"]["code"], "timeout");
  // The program's TERM trap ran (a SIGKILL would have left no file).
  EXPECT_TRUE(eventually(
      [&] { return read_file(dir_ + "/term.log") == "got-term\n"; }, 10s));
}
