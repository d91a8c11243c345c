// Deterministic tests of job and stage actors: virtual time, one thread.
#include "engine_fixture.hpp"

using namespace troupe;
using namespace troupe::test;
using nlohmann::json;

namespace {

pipeline_config pipeline_of(std::vector<stage_config> stages,
                            int max_in_flight = 100) {
  pipeline_config pc;
  pc.name = "p";
  pc.max_in_flight = max_in_flight;
  pc.stages = std::move(stages);
  return pc;
}

} // namespace

TEST_F(engine_test, AStageThatFailsTwiceIsRetriedWithExponentialBackoff) {
  auto sup = start_pipeline(pipeline_of({probe("a", {{"fail_first", 2}}, 5)}));
  auto t0 = now_ms();
  submit(sup, "j1");
  run_to_quiescence();
  ASSERT_EQ(probes->calls.size(), 3u);
  EXPECT_EQ(probes->calls[0].at_ms, t0);
  EXPECT_EQ(probes->calls[1].at_ms, t0 + 100);       // + initial
  EXPECT_EQ(probes->calls[2].at_ms, t0 + 100 + 200); // + initial * multiplier
  auto& row = db->jobs.at("j1");
  EXPECT_EQ(row.state, job_state::succeeded);
  ASSERT_EQ(row.attempts.size(), 3u);
  EXPECT_FALSE(row.attempts[0].ok);
  EXPECT_FALSE(row.attempts[1].ok);
  EXPECT_TRUE(row.attempts[2].ok);
  EXPECT_EQ(row.attempts[1].error_message, "probe failure 2");
  ASSERT_EQ(finished->size(), 1u);
  EXPECT_EQ(finished->at(0).result.state, job_state::succeeded);
  EXPECT_EQ(event_types("j1"),
            (std::vector<std::string>{
                "job.started", "stage.started", "stage.failed", "job.retrying",
                "stage.started", "stage.failed", "job.retrying",
                "stage.started", "stage.succeeded", "job.succeeded"}));
}

TEST_F(engine_test, RetryingIsAVisibleStateWithTheNextAttemptTime) {
  auto sup = start_pipeline(pipeline_of({probe("a", {{"fail_first", 1}}, 3)}));
  submit(sup, "j1");
  run_messages();
  auto& row = db->jobs.at("j1");
  EXPECT_EQ(row.state, job_state::retrying);
  EXPECT_EQ(row.next_attempt_at_ms, now_ms() + 100);
  EXPECT_EQ(row.last_error, "probe: probe failure 1");
  run_to_quiescence();
  EXPECT_EQ(row.state, job_state::succeeded);
}

TEST_F(engine_test, ExhaustedAttemptsDeadLetterWithEveryAttempt) {
  auto sup = start_pipeline(
      pipeline_of({probe("a"), probe("b", {{"fail_first", 99}}, 4)}));
  submit(sup, "j1");
  run_to_quiescence();
  auto& row = db->jobs.at("j1");
  EXPECT_EQ(row.state, job_state::dead_lettered);
  EXPECT_EQ(probes->count("j1", "b"), 4);
  int failed_b = 0;
  for (auto& a : row.attempts)
    if (a.stage == "b") {
      ++failed_b;
      EXPECT_FALSE(a.ok);
      EXPECT_EQ(a.error_code, "probe");
      EXPECT_EQ(a.node, "n1");
    }
  EXPECT_EQ(failed_b, 4);
  ASSERT_EQ(finished->size(), 1u);
  EXPECT_EQ(finished->at(0).result.state, job_state::dead_lettered);
  EXPECT_EQ(finished->at(0).result.failed_stage, 1);
  EXPECT_EQ(event_types("j1").back(), "job.dead_lettered");
}

TEST_F(engine_test, NonRetryableErrorDeadLettersAfterOneAttempt) {
  auto sc = probe("a", {{"fail_first", 9}, {"code", "bad_input"}}, 5);
  sc.retry.non_retryable = {"bad_input"};
  auto sup = start_pipeline(pipeline_of({sc}));
  submit(sup, "j1");
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("j1").state, job_state::dead_lettered);
  EXPECT_EQ(probes->count("j1", "a"), 1);
}

TEST_F(engine_test, PermanentFailureFromTheStageIsNotRetried) {
  auto sup = start_pipeline(
      pipeline_of({probe("a", {{"fail_first", 9}, {"retryable", false}}, 5)}));
  submit(sup, "j1");
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("j1").state, job_state::dead_lettered);
  EXPECT_EQ(probes->count("j1", "a"), 1);
}

TEST_F(engine_test, TimeoutCountsAsAFailedAttemptAndRemovesTheStageActor) {
  auto sc = probe("a", {{"hang", true}}, 2);
  sc.timeout = std::chrono::milliseconds{1000};
  auto sup = start_pipeline(pipeline_of({sc}));
  auto t0 = now_ms();
  submit(sup, "j1");
  run_to_quiescence();
  auto& row = db->jobs.at("j1");
  EXPECT_EQ(row.state, job_state::dead_lettered);
  ASSERT_EQ(row.attempts.size(), 2u);
  EXPECT_EQ(row.attempts[0].error_code, "timeout");
  EXPECT_EQ(row.attempts[0].duration_ms, 1000);
  EXPECT_NE(row.attempts[0].error_message.find("1s"), std::string::npos);
  // Both hung stage actors were killed (their cleanup ran).
  EXPECT_EQ(probes->cleanups, 2);
  // attempt 1 at t0, timeout at t0+1000, retry at +100, timeout +1000.
  EXPECT_EQ(now_ms(), t0 + 2100);
}

TEST_F(engine_test, ThrowingStageBecomesAnAttemptErrorAndIsRetried) {
  stage_config sc;
  sc.name = "boom";
  sc.kind = "fault";
  sc.params = {{"fail_first", 1}, {"throw", true}};
  sc.retry.max_attempts = 3;
  sc.retry.initial = std::chrono::milliseconds{10};
  sc.retry.jitter = jitter_kind::none;
  auto sup = start_pipeline(pipeline_of({sc}));
  submit(sup, "j1");
  run_to_quiescence();
  auto& row = db->jobs.at("j1");
  EXPECT_EQ(row.state, job_state::succeeded);
  ASSERT_EQ(row.attempts.size(), 2u);
  EXPECT_EQ(row.attempts[0].error_code, "exception");
  EXPECT_NE(row.attempts[0].error_message.find("injected fault"),
            std::string::npos);
}

TEST_F(engine_test, CancelDuringAStageStopsItAndNoLaterStageRuns) {
  auto sup = start_pipeline(pipeline_of(
      {probe("a", {{"duration_ms", 5000}}), probe("b"), probe("c")}));
  submit(sup, "j1");
  run_messages();
  ASSERT_EQ(probes->count("j1", "a"), 1);
  caf::anon_send(sup, cancel_atom::value, std::string{"j1"});
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("j1").state, job_state::cancelled);
  EXPECT_EQ(probes->count("j1", "b"), 0);
  EXPECT_EQ(probes->count("j1", "c"), 0);
  EXPECT_EQ(probes->cleanups, 1);
  ASSERT_EQ(finished->size(), 1u);
  EXPECT_EQ(finished->at(0).result.state, job_state::cancelled);
  EXPECT_EQ(event_types("j1").back(), "job.cancelled");
}

TEST_F(engine_test, CancelWhileWaitingForARetryPreventsTheRetry) {
  auto sup = start_pipeline(pipeline_of({probe("a", {{"fail_first", 5}}, 9)}));
  submit(sup, "j1");
  run_messages();
  EXPECT_EQ(db->jobs.at("j1").state, job_state::retrying);
  caf::anon_send(sup, cancel_atom::value, std::string{"j1"});
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("j1").state, job_state::cancelled);
  EXPECT_EQ(probes->count("j1", "a"), 1);
}

TEST_F(engine_test, KilledJobActorRestartsFromItsLastCheckpoint) {
  auto sup = start_pipeline(pipeline_of(
      {probe("a"), probe("b"), probe("c", {{"duration_ms", 1000}})}));
  submit(sup, "j1", 7);
  run_messages();
  ASSERT_EQ(probes->count("j1", "c"), 1);
  auto job = job_actor_of(sup, "j1");
  ASSERT_TRUE(job);
  caf::anon_send_exit(job, caf::exit_reason::kill);
  run_to_quiescence();
  auto& row = db->jobs.at("j1");
  EXPECT_EQ(row.state, job_state::succeeded);
  // Completed stages ran once; the interrupted one ran again.
  EXPECT_EQ(probes->count("j1", "a"), 1);
  EXPECT_EQ(probes->count("j1", "b"), 1);
  EXPECT_EQ(probes->count("j1", "c"), 2);
  EXPECT_EQ(row.claims, 2);
  EXPECT_EQ(stats(sup).restarts, 1);
  // One delivery, one outcome: the job is neither lost nor duplicated.
  ASSERT_EQ(finished->size(), 1u);
  EXPECT_EQ(finished->at(0).delivery, 7u);
  EXPECT_EQ(finished->at(0).result.state, job_state::succeeded);
}

TEST_F(engine_test, StageInputCarriesPayloadPreviousOutputsAndIdempotencyKey) {
  auto sup = start_pipeline(pipeline_of({probe("a"), probe("b")}));
  submit(sup, "j1", 0, R"({"doc":"x.txt"})");
  run_to_quiescence();
  ASSERT_EQ(probes->calls.size(), 2u);
  auto in = json::parse(probes->calls[1].input);
  EXPECT_EQ(in["job_id"], "j1");
  EXPECT_EQ(in["stage"], "b");
  EXPECT_EQ(in["attempt"], 1);
  EXPECT_EQ(in["idempotency_key"], "j1:b");
  EXPECT_EQ(in["payload"]["doc"], "x.txt");
  EXPECT_EQ(in["previous"]["a"]["from"], "a");
  auto& row = db->jobs.at("j1");
  EXPECT_EQ(json::parse(row.result)["from"], "b");
  EXPECT_EQ(row.checkpoints.size(), 2u);
}

TEST_F(engine_test, StoreOutageDelaysCommitsButLosesNothing) {
  auto sup = start_pipeline(pipeline_of({probe("a"), probe("b")}));
  db->fail_next_writes = 3;
  submit(sup, "j1");
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("j1").state, job_state::succeeded);
  EXPECT_EQ(probes->count("j1", "a"), 1);
  EXPECT_EQ(probes->count("j1", "b"), 1);
  EXPECT_EQ(db->fail_next_writes, 0);
}

TEST_F(engine_test, FencedOutRunAbandonsWithoutWriting) {
  auto sup = start_pipeline(
      pipeline_of({probe("a", {{"duration_ms", 1000}}), probe("b")}));
  submit(sup, "j1");
  run_messages();
  db->steal("j1"); // another node claimed the job meanwhile
  auto writes_before = db->writes;
  run_to_quiescence();
  EXPECT_EQ(db->writes, writes_before);
  EXPECT_EQ(probes->count("j1", "b"), 0);
  ASSERT_EQ(finished->size(), 1u);
  EXPECT_TRUE(gave_up(finished->at(0).result.outcome));
}

TEST_F(engine_test, DeliveryOfATerminalJobIsSkipped) {
  auto sup = start_pipeline(pipeline_of({probe("a")}));
  submit(sup, "j1", 1);
  run_to_quiescence();
  submit(sup, "j1", 2);
  run_to_quiescence();
  EXPECT_EQ(probes->count("j1", "a"), 1);
  ASSERT_EQ(finished->size(), 2u);
  EXPECT_EQ(finished->at(1).result.outcome, job_outcome::already_terminal);
  EXPECT_EQ(stats(sup).skipped, 1);
}

TEST_F(engine_test, ReplayOfADeadLetterStartsANewLifeAndKeepsTheHistory) {
  auto sup = start_pipeline(
      pipeline_of({probe("a"), probe("b", {{"fail_calls", 2}}, 2)}));
  submit(sup, "j1");
  run_to_quiescence();
  ASSERT_EQ(db->jobs.at("j1").state, job_state::dead_lettered);
  db->replay("j1", 1); // from the failed stage
  submit(sup, "j1");
  run_to_quiescence();
  auto& row = db->jobs.at("j1");
  EXPECT_EQ(row.state, job_state::succeeded);
  EXPECT_EQ(probes->count("j1", "a"), 1); // not re-run
  // Life 1: a ok, b failed twice. Life 2: b attempt 1 succeeds.
  ASSERT_EQ(row.attempts.size(), 4u);
  EXPECT_EQ(row.attempts[2].life, 1);
  EXPECT_FALSE(row.attempts[2].ok);
  EXPECT_EQ(row.attempts[3].life, 2);
  EXPECT_EQ(row.attempts[3].attempt, 1);
  EXPECT_TRUE(row.attempts[3].ok);
}

TEST_F(engine_test, MaxInFlightBoundsRunningJobs) {
  auto sup = start_pipeline(pipeline_of({probe("a", {{"hang", true}})}, 2));
  for (int i = 0; i < 5; ++i)
    submit(sup, "j" + std::to_string(i));
  run_messages();
  auto s = stats(sup);
  EXPECT_EQ(s.running, 2);
  EXPECT_EQ(s.queued, 3);
  EXPECT_EQ(probes->calls.size(), 2u);
  caf::anon_send(sup, cancel_atom::value, std::string{"j0"});
  run_messages();
  EXPECT_EQ(probes->calls.size(), 3u);
  EXPECT_EQ(stats(sup).cancelled, 1);
  for (int i = 1; i < 5; ++i)
    caf::anon_send(sup, cancel_atom::value, "j" + std::to_string(i));
  run_to_quiescence();
  EXPECT_EQ(stats(sup).cancelled, 5);
}

TEST_F(engine_test, ALongRetryWaitHibernatesAndReloadsThePayload) {
  auto sc = probe("a", {{"fail_first", 1}}, 3);
  sc.retry.initial = std::chrono::minutes{10};
  auto sup = start_pipeline(pipeline_of({probe("first"), sc}));
  submit(sup, "j1", 0, R"({"doc":"big.txt"})");
  run_to_quiescence();
  auto& row = db->jobs.at("j1");
  EXPECT_EQ(row.state, job_state::succeeded);
  EXPECT_EQ(row.claims, 2); // the wake-up re-claimed the job
  ASSERT_EQ(probes->calls.size(), 3u);
  auto in = json::parse(probes->calls[2].input);
  EXPECT_EQ(in["payload"]["doc"], "big.txt");
  EXPECT_EQ(in["previous"]["first"]["from"], "first");
  EXPECT_EQ(in["attempt"], 2);
  // One job.started: the wake-up is not a new start.
  auto types = event_types("j1");
  EXPECT_EQ(std::count(types.begin(), types.end(), "job.started"), 1);
}

TEST_F(engine_test, CancelWhileHibernatingEndsCancelled) {
  auto sc = probe("a", {{"fail_first", 1}}, 3);
  sc.retry.initial = std::chrono::minutes{10};
  auto sup = start_pipeline(pipeline_of({sc}));
  submit(sup, "j1");
  run_messages();
  caf::anon_send(sup, cancel_atom::value, std::string{"j1"});
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("j1").state, job_state::cancelled);
  EXPECT_EQ(probes->count("j1", "a"), 1);
}

TEST_F(engine_test, RetryNowSkipsTheWaitWithoutFiringTheOldTimerTwice) {
  auto sc = probe("a", {{"fail_first", 1}}, 3);
  sc.retry.initial = std::chrono::minutes{10};
  auto sup = start_pipeline(pipeline_of({sc, probe("b")}));
  submit(sup, "j1");
  run_messages();
  ASSERT_EQ(db->jobs.at("j1").state, job_state::retrying);
  auto t0 = now_ms();
  bool fired = false;
  caf::scoped_actor self{sys};
  self->send(sup, now_atom::value, std::string{"j1"});
  run_messages();
  self->receive([&](bool f) { fired = f; },
                [&](caf::error& e) { FAIL() << to_string(e); });
  EXPECT_TRUE(fired);
  run_messages();
  // The second attempt ran at once (virtual time did not move) ...
  EXPECT_EQ(db->jobs.at("j1").state, job_state::succeeded);
  EXPECT_EQ(probes->count("j1", "a"), 2);
  EXPECT_EQ(now_ms(), t0);
  // ... and the ten-minute timer, when it fires, starts nothing.
  run_to_quiescence();
  EXPECT_EQ(probes->count("j1", "a"), 2);
  EXPECT_EQ(probes->count("j1", "b"), 1);
}

TEST_F(engine_test, RetryNowOfARunningJobIsRefusedQuietly) {
  auto sup = start_pipeline(pipeline_of({probe("a", {{"duration_ms", 1000}})}));
  submit(sup, "j1");
  run_messages();
  caf::scoped_actor self{sys};
  self->send(sup, now_atom::value, std::string{"j1"});
  run_messages();
  bool fired = true;
  self->receive([&](bool f) { fired = f; },
                [&](caf::error& e) { FAIL() << to_string(e); });
  EXPECT_FALSE(fired);
  run_to_quiescence();
  EXPECT_EQ(probes->count("j1", "a"), 1);
  EXPECT_EQ(db->jobs.at("j1").state, job_state::succeeded);
}

TEST_F(engine_test, TreeDescribesRunningWaitingAndQueuedJobs) {
  auto sup =
      start_pipeline(pipeline_of({probe("a", {{"duration_ms", 1000}})}, 1));
  submit(sup, "j1", 1);
  submit(sup, "j2", 2);
  run_messages();
  caf::scoped_actor self{sys};
  self->send(sup, tree_atom::value, std::int32_t{10});
  run_messages();
  std::vector<job_brief> briefs;
  self->receive([&](std::vector<job_brief>& b) { briefs = std::move(b); },
                [&](caf::error& e) { FAIL() << to_string(e); });
  ASSERT_EQ(briefs.size(), 2u);
  std::sort(briefs.begin(), briefs.end(),
            [](auto& x, auto& y) { return x.job_id < y.job_id; });
  EXPECT_EQ(briefs[0].state, "running");
  EXPECT_EQ(briefs[0].stage, "a");
  EXPECT_EQ(briefs[0].attempt, 1);
  EXPECT_GT(briefs[0].stage_actor, 0u);
  EXPECT_GT(briefs[0].job_actor, 0u);
  EXPECT_EQ(briefs[1].state, "queued"); // waits for the one slot
  EXPECT_EQ(briefs[1].stage_actor, 0u);
  run_to_quiescence();
}

TEST_F(engine_test, AParkedJobHasNoActorUntilItsRetryIsDue) {
  auto sc = probe("a", {{"fail_first", 1}}, 3);
  sc.retry.initial = std::chrono::minutes{10};
  sc.retry.max = std::chrono::minutes{10};
  auto sup = start_pipeline(pipeline_of({probe("first"), sc}));
  submit(sup, "j1", 7);
  run_messages();
  // The retry wait is committed, then the actor is gone; the supervisor
  // keeps the delivery and describes the job.
  EXPECT_EQ(db->jobs.at("j1").state, job_state::retrying);
  EXPECT_FALSE(job_actor_of(sup, "j1"));
  auto s = stats(sup);
  EXPECT_EQ(s.running, 1);
  EXPECT_EQ(s.waiting, 1);
  EXPECT_TRUE(finished->empty()); // not acked: still this node's job
  caf::scoped_actor self{sys};
  self->send(sup, tree_atom::value, std::int32_t{10});
  run_messages();
  std::vector<job_brief> briefs;
  self->receive([&](std::vector<job_brief>& b) { briefs = std::move(b); },
                [&](caf::error& e) { FAIL() << to_string(e); });
  ASSERT_EQ(briefs.size(), 1u);
  EXPECT_EQ(briefs[0].state, "hibernating");
  EXPECT_EQ(briefs[0].stage, "a");
  EXPECT_EQ(briefs[0].attempt, 1);
  EXPECT_EQ(briefs[0].job_actor, 0u);
  // Ten minutes later a new actor claims the job and runs attempt 2.
  auto t0 = now_ms();
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("j1").state, job_state::succeeded);
  ASSERT_EQ(probes->calls.size(), 3u);
  EXPECT_EQ(probes->calls[2].at_ms, t0 + 10 * 60 * 1000);
  EXPECT_EQ(probes->calls[2].attempt, 2);
  ASSERT_EQ(finished->size(), 1u);
  EXPECT_EQ(finished->at(0).delivery, 7u);
  EXPECT_EQ(finished->at(0).result.state, job_state::succeeded);
  EXPECT_EQ(stats(sup).waiting, 0);
}

TEST_F(engine_test, AnAttemptWaitingForASlotStartsItsTimeoutWhenItStarts) {
  // 2 s in the queue, then 300 ms of work, with a 500 ms timeout: it
  // succeeds, and its recorded duration is the work alone.
  auto sc = probe("a", {{"queue_ms", 2000}, {"duration_ms", 2300}}, 1);
  sc.timeout = std::chrono::milliseconds{500};
  auto sup = start_pipeline(pipeline_of({sc}));
  auto t0 = now_ms();
  submit(sup, "j1");
  run_messages();
  // Queued: no stage.started yet, and the tree says why it waits.
  EXPECT_EQ(event_types("j1"), (std::vector<std::string>{"job.started"}));
  caf::scoped_actor self{sys};
  self->send(sup, tree_atom::value, std::int32_t{10});
  run_messages();
  self->receive(
      [&](std::vector<job_brief>& b) {
        ASSERT_EQ(b.size(), 1u);
        EXPECT_EQ(b[0].state, "waiting_for_slot");
      },
      [&](caf::error& e) { FAIL() << to_string(e); });
  run_to_quiescence();
  auto& row = db->jobs.at("j1");
  EXPECT_EQ(row.state, job_state::succeeded);
  ASSERT_EQ(row.attempts.size(), 1u);
  EXPECT_EQ(row.attempts[0].started_at_ms, t0 + 2000);
  EXPECT_EQ(row.attempts[0].duration_ms, 300);
  EXPECT_EQ(event_types("j1"),
            (std::vector<std::string>{"job.started", "stage.started",
                                      "stage.succeeded", "job.succeeded"}));
}

TEST_F(engine_test, AQueuedAttemptThatHangsTimesOutCountingFromItsStart) {
  auto sc = probe("a", {{"queue_ms", 2000}, {"hang", true}}, 1);
  sc.timeout = std::chrono::milliseconds{500};
  auto sup = start_pipeline(pipeline_of({sc}));
  auto t0 = now_ms();
  submit(sup, "j1");
  run_to_quiescence();
  auto& row = db->jobs.at("j1");
  EXPECT_EQ(row.state, job_state::dead_lettered);
  ASSERT_EQ(row.attempts.size(), 1u);
  EXPECT_EQ(row.attempts[0].error_code, "timeout");
  EXPECT_EQ(row.attempts[0].duration_ms, 500);
  EXPECT_EQ(now_ms(), t0 + 2500);
  EXPECT_EQ(probes->cleanups, 1);
}

TEST_F(engine_test, CancelWhileWaitingForASlotEndsTheAttempt) {
  auto sc = probe("a", {{"queue_ms", 5000}, {"duration_ms", 6000}});
  sc.timeout = std::chrono::milliseconds{500};
  auto sup = start_pipeline(pipeline_of({sc}));
  submit(sup, "j1");
  run_messages();
  caf::anon_send(sup, cancel_atom::value, std::string{"j1"});
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("j1").state, job_state::cancelled);
  EXPECT_EQ(probes->cleanups, 1);
}
