// What a running attempt reports (docs/stages.md), under CAF's
// deterministic coordinator: progress published and stored at a bounded
// rate, a heartbeat timeout that catches a silent attempt long before its
// timeout, details handed to the next attempt across a parked retry, and
// malformed reports refused without harm; and the cancellation flag a
// C++ stage's worker thread can watch.
#include <set>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine_fixture.hpp"

using namespace troupe;
using namespace troupe::test;
using json = nlohmann::json;

namespace {

json report(double progress, const std::string& message) {
  return json{{"progress", progress}, {"message", message}};
}

} // namespace

TEST_F(engine_test, ProgressIsPublishedAtABoundedRateAndTheLatestIsStored) {
  json reports = json::array();
  for (int i = 1; i <= 10; ++i) // every 150 ms, 10 % to 100 %
    reports.push_back(
        {i * 150, report(i / 10.0, "chunk " + std::to_string(i)).dump()});
  auto sup = start_pipeline(
      one_stage(probe("work", {{"duration_ms", 3000}, {"reports", reports}})));
  submit(sup, "j1");
  run_to_quiescence();
  auto progress = of_type(*events, "stage.progress");
  // The first report goes at once, then at most one per second; 100 % goes
  // at once whatever the interval.
  ASSERT_GE(progress.size(), 2u);
  ASSERT_LE(progress.size(), 3u);
  EXPECT_EQ(json::parse(progress.front().progress)["message"], "chunk 1");
  EXPECT_EQ(json::parse(progress.back().progress), report(1.0, "chunk 10"));
  EXPECT_EQ(progress.back().stage, "work");
  auto stored = json::parse(db->jobs.at("j1").progress);
  EXPECT_EQ(stored["progress"], 1.0);
  EXPECT_EQ(stored["stage_index"], 0);
  EXPECT_EQ(stored["attempt"], 1);
  EXPECT_EQ(db->jobs.at("j1").state, job_state::succeeded);
}

TEST_F(engine_test, ASilentAttemptFailsAtItsHeartbeatTimeoutNotItsTimeout) {
  auto sc = probe(
      "long",
      {{"hang", true},
       {"reports", {{500, R"({"heartbeat":true,"details":{"offset":7}})"}}}},
      2);
  sc.timeout = duration_ms{600000};
  sc.heartbeat_timeout = duration_ms{2000};
  sc.retry.initial = duration_ms{3000}; // parked: the retry claims again
  auto sup = start_pipeline(one_stage(sc));
  submit(sup, "j2");
  run_to_quiescence();
  auto& row = db->jobs.at("j2");
  ASSERT_EQ(row.attempts.size(), 2u);
  EXPECT_EQ(row.attempts[0].error_code, "heartbeat_timeout");
  // Silent from 500 ms on: failed at 2.5 s, not at the 10-minute timeout.
  EXPECT_EQ(row.attempts[0].duration_ms, 2500);
  EXPECT_EQ(row.state, job_state::dead_lettered);
  // The retry, started by a new actor after the parked wait, got the
  // details of the last report from the store.
  ASSERT_EQ(probes->calls.size(), 2u);
  auto input = json::parse(probes->calls[1].input);
  EXPECT_EQ(input["heartbeat_details"], json({{"offset", 7}}));
  EXPECT_FALSE(
      json::parse(probes->calls[0].input).contains("heartbeat_details"));
}

TEST_F(engine_test, ReportsKeepAnAttemptAlivePastItsHeartbeatTimeout) {
  json reports = json::array();
  for (int t = 500; t <= 4000; t += 500)
    reports.push_back({t, R"({"heartbeat":true})"});
  auto sc = probe("steady", {{"duration_ms", 4200}, {"reports", reports}}, 1);
  sc.heartbeat_timeout = duration_ms{1000};
  auto sup = start_pipeline(one_stage(sc));
  submit(sup, "j3");
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("j3").state, job_state::succeeded);
  // Bare heartbeats are not progress: nothing published or stored.
  EXPECT_TRUE(of_type(*events, "stage.progress").empty());
  EXPECT_TRUE(db->jobs.at("j3").progress.empty());
}

TEST_F(engine_test, AMalformedReportIsRefusedOnceAndChangesNothing) {
  json reports = json::array({{100, "not json"},
                              {200, R"({"progress":7})"},
                              {300, R"({"progres":0.5})"},
                              {400, R"({"details":{"k":"a\u0000b"}})"},
                              {500, std::string(300, '[')}});
  auto sup = start_pipeline(
      one_stage(probe("w", {{"duration_ms", 1000}, {"reports", reports}}, 1)));
  submit(sup, "j4");
  run_to_quiescence();
  auto progress = of_type(*events, "stage.progress");
  ASSERT_EQ(progress.size(), 1u);
  EXPECT_EQ(progress[0].error_code, "invalid_report");
  EXPECT_TRUE(db->jobs.at("j4").progress.empty());
  EXPECT_EQ(db->jobs.at("j4").state, job_state::succeeded);
}

TEST_F(engine_test, AStageSeesItsCancellationFlagOnCancelAndOnTimeout) {
  auto sc = probe("work", {{"hang", true}, {"watch_cancel", true}}, 1);
  sc.timeout = std::chrono::seconds{5};
  auto sup = start_pipeline(one_stage(sc));
  submit(sup, "timed", 1);
  submit(sup, "cancelled", 2);
  run_messages();
  ASSERT_EQ(probes->flags.size(), 2u);
  EXPECT_FALSE(*probes->flags[0]);
  EXPECT_FALSE(*probes->flags[1]);
  caf::anon_send(sup, cancel_atom::value, std::string{"cancelled"});
  run_messages();
  EXPECT_FALSE(*probes->flags[0]) << "the other attempt still runs";
  EXPECT_TRUE(*probes->flags[1]);
  run_to_quiescence(); // the timeout fires
  EXPECT_TRUE(*probes->flags[0]);
  EXPECT_EQ(db->jobs.at("timed").state, job_state::dead_lettered);
  EXPECT_EQ(db->jobs.at("cancelled").state, job_state::cancelled);
}

TEST_F(engine_test, ProgressReportedBeforeTheClaimIsStoredWhenTheJobIsWritten) {
  speculate = std::chrono::milliseconds{100};
  fresh = true;
  json reports = json::array({json::array({10, report(0.4, "x").dump()})});
  auto sup = start_pipeline(
      one_stage(probe("work", {{"duration_ms", 3000}, {"reports", reports}})));
  submit(sup, "early");
  run_to_quiescence();
  ASSERT_EQ(db->jobs.at("early").state, job_state::succeeded);
  EXPECT_EQ(db->creates, 1) << "the job ran before its claim";
  ASSERT_FALSE(db->jobs.at("early").progress.empty());
  EXPECT_EQ(json::parse(db->jobs.at("early").progress)["progress"], 0.4);
}

TEST_F(engine_test, ATracedJobsEventsAndAttemptsCarryItsTrace) {
  const std::string tp =
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto sup = start_pipeline(one_stage(probe("work", {{"fail_first", 1}})));
  auto spec = spec_of("traced");
  spec.traceparent = tp;
  caf::anon_send(sup, submit_atom::value, spec, std::uint64_t{1});
  run_to_quiescence();
  ASSERT_EQ(db->jobs.at("traced").state, job_state::succeeded);
  ASSERT_EQ(probes->calls.size(), 2u);
  std::set<std::string> job_spans, attempt_spans;
  for (auto& ev : *events) {
    EXPECT_EQ(ev.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736") << ev.type;
    (ev.type.rfind("job.", 0) == 0 ? job_spans : attempt_spans)
        .insert(ev.span_id);
  }
  EXPECT_EQ(job_spans.size(), 1u) << "one span for the job";
  EXPECT_EQ(attempt_spans.size(), 2u) << "one span per attempt";
  // Each attempt passes the trace on with its own span as the parent.
  for (auto& call : probes->calls) {
    EXPECT_EQ(call.traceparent.substr(0, 36), tp.substr(0, 36));
    EXPECT_EQ(attempt_spans.count(call.traceparent.substr(36, 16)), 1u);
  }
}
