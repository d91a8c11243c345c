// Deterministic tests of speculation (job_deps::speculate): fresh jobs run
// before their claim and are written in one commit when they finish in time.
#include "engine_fixture.hpp"

using namespace troupe;
using namespace troupe::test;
using std::chrono::milliseconds;

namespace {

pipeline_config pipeline_of(std::vector<stage_config> stages) {
  pipeline_config pc;
  pc.name = "p";
  pc.stages = std::move(stages);
  return pc;
}

class speculation_test : public engine_test {
public:
  speculation_test() {
    speculate = milliseconds{20};
    fresh = true;
  }

  /// j1 succeeded, created once without a claim, in `writes` writes.
  void expect_created_succeeded(int writes) {
    auto& row = db->jobs.at("j1");
    EXPECT_EQ(row.state, job_state::succeeded);
    EXPECT_EQ(row.claims, 0);
    EXPECT_EQ(db->creates, 1);
    EXPECT_EQ(db->writes, writes);
  }

  std::vector<std::string> persisted_types(const std::string& job_id) {
    std::vector<std::string> out;
    for (auto& ev : db->jobs.at(job_id).events)
      out.push_back(ev.type);
    return out;
  }
};

/// What a 2-stage job whose second stage failed once publishes, in order.
const std::vector<std::string> retried_second_stage{
    "job.started",   "stage.started",   "stage.succeeded",
    "stage.started", "stage.failed",    "job.retrying",
    "stage.started", "stage.succeeded", "job.succeeded"};

} // namespace

TEST_F(speculation_test, AJobFinishingInsideTheWindowIsWrittenInOneCommit) {
  auto sup = start_pipeline(pipeline_of({probe("a"), probe("b"), probe("c")}));
  submit(sup, "j1");
  run_to_quiescence();
  auto& row = db->jobs.at("j1");
  EXPECT_EQ(row.state, job_state::succeeded);
  EXPECT_EQ(row.claims, 0);
  EXPECT_EQ(db->creates, 1);
  EXPECT_EQ(db->writes, 1);
  EXPECT_EQ(row.epoch, 1);
  EXPECT_EQ(row.checkpoints.size(), 3u);
  ASSERT_EQ(row.attempts.size(), 3u);
  for (auto& a : row.attempts)
    EXPECT_TRUE(a.ok);
  EXPECT_EQ(row.spec.payload, R"({"n":1})");
  EXPECT_EQ(persisted_types("j1"),
            (std::vector<std::string>{"job.started", "job.succeeded"}));
  // Published after the commit, in the order they happened.
  EXPECT_EQ(event_types("j1"),
            (std::vector<std::string>{"job.started", "stage.started",
                                      "stage.succeeded", "stage.started",
                                      "stage.succeeded", "stage.started",
                                      "stage.succeeded", "job.succeeded"}));
  ASSERT_EQ(finished->size(), 1u);
  EXPECT_EQ(finished->at(0).result.state, job_state::succeeded);
}

TEST_F(speculation_test, NothingIsPublishedBeforeTheCommit) {
  auto sup = start_pipeline(pipeline_of({probe("a"), probe("b")}));
  db->fail_next_writes = 1; // the one commit has to wait for the store
  submit(sup, "j1");
  run_messages();
  EXPECT_TRUE(event_types("j1").empty());
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("j1").state, job_state::succeeded);
  EXPECT_EQ(event_types("j1").size(), 6u);
}

TEST_F(speculation_test, AJobStillRunningWhenTheWindowEndsIsCreatedAndGoesOn) {
  auto sup = start_pipeline(
      pipeline_of({probe("a"), probe("b", {{"duration_ms", 50}}), probe("c")}));
  submit(sup, "j1");
  run_to_quiescence();
  // Created running with a's checkpoint when the window ended, then b's
  // checkpoint, then c's terminal state.
  expect_created_succeeded(3);
  auto& row = db->jobs.at("j1");
  EXPECT_EQ(row.checkpoints.size(), 3u);
  EXPECT_EQ(row.attempts.size(), 3u);
  EXPECT_EQ(probes->count("j1", "a"), 1);
  EXPECT_EQ(probes->count("j1", "b"), 1);
  EXPECT_EQ(event_types("j1"),
            (std::vector<std::string>{"job.started", "stage.started",
                                      "stage.succeeded", "stage.started",
                                      "stage.succeeded", "stage.started",
                                      "stage.succeeded", "job.succeeded"}));
  EXPECT_EQ(persisted_types("j1"),
            (std::vector<std::string>{"job.started", "job.succeeded"}));
}

// The windows of a pipeline's jobs end on one timer of the supervisor, not
// one per job (a timer per job cost a fifth of the node's CPU per job):
// each job still ends its own window, the later one at most a quarter of a
// window late.
TEST_F(speculation_test, JobsStartedApartEndTheirWindowsOnOneTimer) {
  auto sup = start_pipeline(pipeline_of({probe("a", {{"duration_ms", 100}})}));
  submit(sup, "j1");
  sched.run();
  sched.clock().advance_time(milliseconds{10});
  sched.run();
  submit(sup, "j2");
  sched.run();
  // Two stage attempts of 100 ms and one speculation tick.
  EXPECT_EQ(sched.clock().schedule().size(), 3u);
  sched.clock().advance_time(milliseconds{10}); // j1's window ends (20 ms)
  sched.run();
  EXPECT_EQ(db->jobs.at("j1").state, job_state::running);
  EXPECT_EQ(db->jobs.count("j2"), 0u);
  sched.clock().advance_time(milliseconds{15}); // j2's ends at 30 ms
  sched.run();
  ASSERT_EQ(db->jobs.count("j2"), 1u);
  EXPECT_EQ(db->jobs.at("j2").state, job_state::running);
  run_to_quiescence();
  for (auto id : {"j1", "j2"}) {
    EXPECT_EQ(db->jobs.at(id).state, job_state::succeeded);
    EXPECT_EQ(db->jobs.at(id).claims, 0);
  }
  EXPECT_EQ(db->creates, 2);
  EXPECT_EQ(db->writes, 4); // each: created running, then succeeded
}

TEST_F(speculation_test, AFailureInsideTheWindowIsCreatedRetrying) {
  auto sup = start_pipeline(
      pipeline_of({probe("a"), probe("b", {{"fail_first", 1}}, 3)}));
  auto t0 = now_ms();
  submit(sup, "j1");
  run_messages();
  auto& row = db->jobs.at("j1");
  // One write: created `retrying` with a's checkpoint and both attempts.
  EXPECT_EQ(row.claims, 0);
  EXPECT_EQ(db->creates, 1);
  EXPECT_EQ(db->writes, 1);
  EXPECT_EQ(row.checkpoints.size(), 1u);
  EXPECT_EQ(row.attempts.size(), 2u);
  EXPECT_EQ(row.state, job_state::retrying);
  EXPECT_EQ(row.next_attempt_at_ms, t0 + 100);
  run_to_quiescence();
  EXPECT_EQ(row.state, job_state::succeeded);
  ASSERT_EQ(row.attempts.size(), 3u);
  EXPECT_TRUE(row.attempts[0].ok);
  EXPECT_FALSE(row.attempts[1].ok);
  EXPECT_TRUE(row.attempts[2].ok);
  EXPECT_EQ(probes->count("j1", "a"), 1);
  EXPECT_EQ(event_types("j1"), retried_second_stage);
}

// A retry due inside the window stays speculative: the failed attempt is
// written with the rest by the one create (the retry path of a fresh job
// costs one commit, like the first-attempt path).
TEST_F(speculation_test, AShortRetryInsideTheWindowIsWrittenInOneCommit) {
  auto flaky = probe("b", {{"fail_first", 1}}, 3);
  flaky.retry.initial = milliseconds{5};
  auto sup = start_pipeline(pipeline_of({probe("a"), flaky}));
  submit(sup, "j1");
  run_messages();
  EXPECT_TRUE(db->jobs.find("j1") == db->jobs.end()); // nothing written
  EXPECT_TRUE(event_types("j1").empty());             // nothing published
  run_to_quiescence();
  expect_created_succeeded(1);
  auto& row = db->jobs.at("j1");
  ASSERT_EQ(row.attempts.size(), 3u);
  EXPECT_TRUE(row.attempts[0].ok);
  EXPECT_FALSE(row.attempts[1].ok);
  EXPECT_EQ(row.attempts[1].attempt, 1);
  EXPECT_TRUE(row.attempts[2].ok);
  EXPECT_EQ(row.attempts[2].attempt, 2);
  EXPECT_EQ(row.checkpoints.size(), 2u);
  // The retried attempt's error stays on the job, as an update keeps it.
  EXPECT_EQ(row.last_error, "probe: probe failure 1");
  EXPECT_EQ(persisted_types("j1"),
            (std::vector<std::string>{"job.started", "job.retrying",
                                      "job.succeeded"}));
  ASSERT_EQ(finished->size(), 1u); // the job's slot is given back
  EXPECT_EQ(finished->at(0).result.state, job_state::succeeded);
  EXPECT_EQ(event_types("j1"), retried_second_stage);
}

// The window ends while the held retry runs: the job is created running
// with the failed attempt, and goes on as any other.
TEST_F(speculation_test, AHeldRetryStillRunningWhenTheWindowEndsIsCreated) {
  auto flaky = probe("a", {{"fail_first", 1}, {"duration_ms", 15}}, 3);
  flaky.retry.initial = milliseconds{1};
  auto sup = start_pipeline(pipeline_of({flaky}));
  submit(sup, "j1");
  run_to_quiescence();
  expect_created_succeeded(2); // created running at 20 ms, then succeeded
  auto& row = db->jobs.at("j1");
  ASSERT_EQ(row.attempts.size(), 2u);
  EXPECT_FALSE(row.attempts[0].ok);
  EXPECT_TRUE(row.attempts[1].ok);
  EXPECT_EQ(row.last_error, "probe: probe failure 1");
}

TEST_F(speculation_test, AJobThatExistsIsClaimedAndTheStoreDecides) {
  // Re-submitted after the duplicate window: the job finished long ago.
  auto& old = db->jobs["j1"];
  old.spec.job_id = "j1";
  old.state = job_state::succeeded;
  old.epoch = 3;
  auto sup = start_pipeline(pipeline_of({probe("a")}));
  submit(sup, "j1");
  run_to_quiescence();
  auto& row = db->jobs.at("j1");
  EXPECT_EQ(row.state, job_state::succeeded);
  EXPECT_EQ(row.epoch, 3);
  EXPECT_EQ(row.claims, 1);
  EXPECT_TRUE(row.attempts.empty());
  // What ran here was dropped unannounced.
  EXPECT_TRUE(event_types("j1").empty());
  ASSERT_EQ(finished->size(), 1u);
  EXPECT_EQ(finished->at(0).result.outcome, job_outcome::already_terminal);
}

TEST_F(speculation_test, ACancelInsideTheWindowEndsCancelled) {
  auto sup = start_pipeline(
      pipeline_of({probe("a"), probe("b", {{"duration_ms", 10}})}));
  submit(sup, "j1");
  run_messages(); // a done, b running, nothing claimed yet
  EXPECT_EQ(db->jobs.count("j1"), 0u);
  caf::anon_send(sup, cancel_atom::value, std::string{"j1"});
  run_to_quiescence();
  auto& row = db->jobs.at("j1");
  EXPECT_EQ(row.state, job_state::cancelled);
  EXPECT_EQ(row.claims, 0);
  EXPECT_EQ(db->creates, 1);
  // a's checkpoint, made before anything was written, was kept.
  EXPECT_EQ(row.checkpoints.size(), 1u);
  EXPECT_EQ(probes->count("j1", "b"), 1);
  EXPECT_EQ(persisted_types("j1"),
            (std::vector<std::string>{"job.started", "job.cancelled"}));
}

TEST_F(speculation_test, ZeroWindowClaimsFirst) {
  speculate = milliseconds{0};
  auto sup = start_pipeline(pipeline_of({probe("a"), probe("b")}));
  submit(sup, "j1");
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("j1").claims, 1);
  EXPECT_EQ(db->creates, 0);
  EXPECT_EQ(db->writes, 2);
}

TEST_F(speculation_test, AFirstAttemptOutOfRetriesIsCreatedDeadLettered) {
  auto sup = start_pipeline(pipeline_of({probe("a", {{"fail_first", 9}}, 1)}));
  submit(sup, "j1");
  run_to_quiescence();
  auto& row = db->jobs.at("j1");
  EXPECT_EQ(row.state, job_state::dead_lettered);
  EXPECT_EQ(row.claims, 0);
  EXPECT_EQ(db->writes, 1);
  ASSERT_EQ(row.attempts.size(), 1u);
  EXPECT_FALSE(row.attempts[0].ok);
  EXPECT_EQ(persisted_types("j1"),
            (std::vector<std::string>{"job.started", "job.dead_lettered"}));
}

TEST_F(speculation_test, AnExistingJobFoundWhileRetryingIsLeftToTheStore) {
  // The job exists (e.g. cancelled by an operator before any node took it)
  // and the fresh delivery fails its first attempt: the retrying create is
  // refused, nothing of this run lands, the tombstone decides.
  auto& old = db->jobs["j1"];
  old.spec.job_id = "j1";
  old.state = job_state::cancelled;
  auto sup = start_pipeline(pipeline_of({probe("a", {{"fail_first", 1}}, 3)}));
  submit(sup, "j1");
  run_to_quiescence();
  auto& row = db->jobs.at("j1");
  EXPECT_EQ(row.state, job_state::cancelled);
  EXPECT_TRUE(row.attempts.empty());
  EXPECT_EQ(probes->count("j1", "a"), 1); // the pending retry was dropped
  EXPECT_TRUE(event_types("j1").empty());
  ASSERT_EQ(finished->size(), 1u);
  EXPECT_EQ(finished->at(0).result.outcome, job_outcome::already_terminal);
}

TEST_F(speculation_test, EventsWaitForTheCreateEvenWhenTheRetryIsFaster) {
  // The create (retrying) cannot commit at once (store down for one write,
  // rewritten after 500 ms) while the 100 ms retry runs: the retry's events
  // must still come after the ones the create announces.
  auto sup = start_pipeline(pipeline_of({probe("a", {{"fail_first", 1}}, 3)}));
  db->fail_next_writes = 1;
  submit(sup, "j1");
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("j1").state, job_state::succeeded);
  EXPECT_EQ(db->creates, 1);
  EXPECT_EQ(event_types("j1"),
            (std::vector<std::string>{
                "job.started", "stage.started", "stage.failed", "job.retrying",
                "stage.started", "stage.succeeded", "job.succeeded"}));
}
