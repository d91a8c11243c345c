// Callback stages (actors/callback_stage.hpp) under CAF's deterministic
// coordinator: the wait is a `waiting` row with a token and deadline and
// an acked delivery (no actor left); a completion resumes the job with the
// outside system's output for the next stage; an error follows the retry
// rules; no completion by the deadline is a retryable callback_timeout,
// and the retry waits under a new token.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "actors/callback_stage.hpp"
#include "actors/delivery_verdict.hpp"
#include "engine_fixture.hpp"
#include "messages/json_codec.hpp"

using namespace troupe;
using namespace troupe::test;
using json = nlohmann::json;

namespace {

stage_config callback(const std::string& name, int max_attempts = 3) {
  stage_config sc;
  sc.name = name;
  sc.kind = "callback";
  sc.params = json{{"subject", "approvals"}};
  sc.timeout = std::chrono::minutes{10};
  sc.retry.max_attempts = max_attempts;
  sc.retry.initial = std::chrono::milliseconds{100};
  sc.retry.max = std::chrono::milliseconds{100};
  return sc;
}

/// Pipeline "p": approve (callback), then `after` (a probe that sees it).
pipeline_config approve_then_probe(int max_attempts = 3) {
  auto pc = one_stage(callback("approve", max_attempts));
  pc.stages.push_back(engine_test::probe("after"));
  return pc;
}

} // namespace

class callback_test : public engine_test {
public:
  /// Submits "j" and runs until its callback waits; returns the request.
  json wait_for_request(const caf::actor& sup) {
    submit(sup, "j", ++delivery_);
    run_to_quiescence();
    auto waits = of_type(*events, "job.waiting");
    EXPECT_FALSE(waits.empty());
    if (waits.empty())
      return json{};
    return json::parse(waits.back().notify_body);
  }

  /// What the scheduler does once the row is due: publish it again.
  void republish(const caf::actor& sup) {
    auto spec = spec_of("j");
    spec.gen = db->publish_due("j");
    spec.resumed = true;
    caf::anon_send(sup, submit_atom::value, spec, ++delivery_);
    run_to_quiescence();
  }

  std::uint64_t delivery_ = 0;
};

TEST_F(callback_test, TheWaitIsARowInTheStoreAndTheDeliveryIsAcked) {
  auto sup = start_pipeline(approve_then_probe());
  auto req = wait_for_request(sup);
  auto* res = result_of(*finished, 1);
  ASSERT_NE(res, nullptr);
  EXPECT_EQ(res->outcome, job_outcome::waiting_in_store);
  EXPECT_EQ(res->state, job_state::waiting);
  EXPECT_EQ(verdict_for(*res).action, delivery_action::ack);
  auto& row = db->jobs.at("j");
  EXPECT_EQ(row.state, job_state::waiting);
  auto waiting = of_type(*events, "job.waiting").back();
  EXPECT_EQ(row.run_at_ms, waiting.time_ms + 10 * 60 * 1000);
  EXPECT_EQ(stats(sup).running, 0);
  EXPECT_FALSE(job_actor_of(sup, "j"));
  EXPECT_FALSE(sched.has_pending_timeout())
      << "no timer may keep the quit job actor alive";
  // The request names the token, the job and carries the stage's input.
  EXPECT_EQ(req["token"], row.callback_token);
  EXPECT_EQ(job_of_callback_token(req["token"]), "j");
  EXPECT_EQ(req["stage"], "approve");
  EXPECT_EQ(req["input"]["payload"]["n"], 1);
  EXPECT_EQ(waiting.notify_subject, "approvals");
  EXPECT_EQ(waiting.deadline_ms, row.run_at_ms);
  // The event log keeps the wait, never the token.
  EXPECT_EQ(encode_event(waiting).find(row.callback_token), std::string::npos);
}

TEST_F(callback_test, ACompletionResumesTheJobWithTheOutsideOutput) {
  auto sup = start_pipeline(approve_then_probe());
  auto req = wait_for_request(sup);
  EXPECT_FALSE(db->complete("j", "j.wrong", R"({"ok":true,"output":1})"));
  ASSERT_TRUE(db->complete("j", req["token"],
                           R"({"ok":true,"output":{"approved_by":"ada"}})"));
  EXPECT_FALSE(db->complete("j", req["token"], R"({"ok":true})"))
      << "a second completion of one wait";
  republish(sup);
  auto& row = db->jobs.at("j");
  EXPECT_EQ(row.state, job_state::succeeded);
  ASSERT_EQ(probes->count("j", "after"), 1);
  auto in = json::parse(probes->calls.back().input);
  EXPECT_EQ(in["previous"]["approve"]["approved_by"], "ada");
  EXPECT_EQ(row.checkpoints.at(0).output, R"({"approved_by":"ada"})");
  // One attempt of the callback stage, ok, timed from its wait.
  ASSERT_GE(row.attempts.size(), 1u);
  EXPECT_EQ(row.attempts[0].stage, "approve");
  EXPECT_TRUE(row.attempts[0].ok);
  EXPECT_EQ(row.attempts[0].attempt, 1);
}

TEST_F(callback_test, AnErrorFromOutsideFollowsTheRetryRules) {
  auto sup = start_pipeline(approve_then_probe(2));
  auto req = wait_for_request(sup);
  ASSERT_TRUE(db->complete(
      "j", req["token"],
      R"({"ok":false,"code":"declined","message":"no","retryable":false})"));
  republish(sup);
  auto& row = db->jobs.at("j");
  EXPECT_EQ(row.state, job_state::dead_lettered);
  EXPECT_EQ(row.last_error, "declined: no");
  EXPECT_EQ(probes->count("j", "after"), 0);
}

TEST_F(callback_test, NoCompletionByTheDeadlineRetriesUnderANewToken) {
  auto sup = start_pipeline(approve_then_probe());
  auto first = wait_for_request(sup);
  // The deadline passes: the scheduler publishes the row without one.
  republish(sup);
  auto& row = db->jobs.at("j");
  ASSERT_EQ(row.state, job_state::waiting) << "the retry waits again";
  ASSERT_EQ(row.attempts.size(), 1u);
  EXPECT_EQ(row.attempts[0].error_code, "callback_timeout");
  auto second = json::parse(of_type(*events, "job.waiting").back().notify_body);
  EXPECT_EQ(second["attempt"], 2);
  EXPECT_NE(second["token"], first["token"]);
  EXPECT_FALSE(db->complete("j", first["token"], R"({"ok":true})"))
      << "the first attempt's token is dead";
  ASSERT_TRUE(db->complete("j", second["token"], R"({"ok":true,"output":2})"));
  republish(sup);
  EXPECT_EQ(row.state, job_state::succeeded);
  EXPECT_EQ(probes->count("j", "after"), 1);
}

TEST(CallbackToken, CarriesItsJobAndIsNeverRepeated) {
  auto a = make_callback_token("billing.42");
  auto b = make_callback_token("billing.42");
  EXPECT_NE(a, b);
  EXPECT_EQ(job_of_callback_token(a), "billing.42");
  EXPECT_EQ(job_of_callback_token("billing.42"), "");
  EXPECT_EQ(job_of_callback_token(".0123456789abcdef0123456789abcdef"), "");
  EXPECT_EQ(job_of_callback_token("j.0123456789abcdef0123456789abcdeg"), "");
}
