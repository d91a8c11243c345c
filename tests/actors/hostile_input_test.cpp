// What a careless or hostile publisher can make the job engine do, under
// CAF's deterministic coordinator: redeliveries of a message still held,
// output PostgreSQL cannot store, writes it refuses, another pipeline's id.
#include <gtest/gtest.h>

#include "engine_fixture.hpp"
#include "messages/errc.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

/// Delivers message `seq` of job `id` as delivery `delivery`.
void deliver(const caf::actor& sup, const std::string& id, std::uint64_t seq,
             std::uint64_t delivery, const std::string& pipeline = "p",
             std::int32_t gen = 0) {
  job_spec spec;
  spec.job_id = id;
  spec.pipeline = pipeline;
  spec.payload = R"({"n":1})";
  spec.stream_seq = seq;
  spec.gen = gen;
  caf::anon_send(sup, submit_atom::value, spec, delivery);
}

} // namespace

// Hole 3: JetStream redelivers the message of a job still running here (an
// outage longer than ack_wait). Acking that delivery would delete the job's
// only message while its row is still running.
TEST_F(engine_test, TheSameMessageRedeliveredWhileRunningIsNotAcked) {
  auto sup = start_pipeline(one_stage(probe("a", {{"duration_ms", 1000}})));
  deliver(sup, "j1", 7, 1);
  run_messages();
  deliver(sup, "j1", 7, 2);
  run_messages();
  auto* dup = result_of(*finished, 2);
  ASSERT_NE(dup, nullptr);
  EXPECT_EQ(dup->same_as, 1u);
  EXPECT_EQ(dup->outcome, job_outcome::same_message);
  run_to_quiescence();
  auto* done = result_of(*finished, 1);
  ASSERT_NE(done, nullptr);
  EXPECT_EQ(done->state, job_state::succeeded);
  EXPECT_EQ(probes->count("j1", "a"), 1);
}

TEST_F(engine_test, AnotherMessageOfARunningJobIsADuplicate) {
  auto sup = start_pipeline(one_stage(probe("a", {{"duration_ms", 1000}})));
  deliver(sup, "j1", 7, 1);
  run_messages();
  deliver(sup, "j1", 9, 2); // published again under the same key
  run_messages();
  auto* dup = result_of(*finished, 2);
  ASSERT_NE(dup, nullptr);
  EXPECT_EQ(dup->outcome, job_outcome::already_terminal);
  EXPECT_EQ(dup->same_as, 0u);
  run_to_quiescence();
  EXPECT_EQ(probes->count("j1", "a"), 1);
}

// Chaos seed 2: a node woke from SIGSTOP still running a job the store had
// rescued and published again (generation 1). Acking that message as a
// duplicate of the stale run lost the job: the stale run's commit is
// fenced, and no message was left. It goes back to the broker instead.
TEST_F(engine_test, ALaterGenerationOfAJobHeldHereIsNotAckedAsADuplicate) {
  auto sup = start_pipeline(one_stage(probe("a", {{"duration_ms", 1000}})));
  deliver(sup, "j1", 7, 1);
  run_messages();
  deliver(sup, "j1", 9, 2, "p", 1);
  run_messages();
  auto* newer = result_of(*finished, 2);
  ASSERT_NE(newer, nullptr);
  EXPECT_EQ(newer->outcome, job_outcome::requeued);
  EXPECT_GT(newer->requeue_ms, 0);
  // An older generation is what it always was: a duplicate.
  deliver(sup, "j1", 5, 3, "p", 0);
  run_messages();
  auto* older = result_of(*finished, 3);
  ASSERT_NE(older, nullptr);
  EXPECT_EQ(older->outcome, job_outcome::already_terminal);
  run_to_quiescence();
  EXPECT_EQ(probes->count("j1", "a"), 1);
}

TEST_F(engine_test, ARedeliveryOfAJobWaitingForASlotIsCaught) {
  auto sup = start_pipeline(one_stage(probe("a", {{"duration_ms", 1000}}), 1));
  deliver(sup, "j1", 1, 1);
  deliver(sup, "j2", 2, 2); // queued: j1 holds the only slot
  run_messages();
  deliver(sup, "j2", 2, 3);
  run_messages();
  auto* dup = result_of(*finished, 3);
  ASSERT_NE(dup, nullptr);
  EXPECT_EQ(dup->same_as, 2u);
  run_to_quiescence();
  EXPECT_EQ(probes->count("j2", "a"), 1); // ran once, not twice
}

TEST_F(engine_test, TheSameMessageRedeliveredWhileParkedIsNotAcked) {
  auto sc = probe("a", {{"fail_first", 1}}, 3);
  sc.retry.initial = std::chrono::minutes{10};
  auto sup = start_pipeline(one_stage(sc));
  deliver(sup, "j1", 7, 1);
  run_messages();
  EXPECT_EQ(stats(sup).waiting, 1);
  deliver(sup, "j1", 7, 2);
  run_messages();
  auto* dup = result_of(*finished, 2);
  ASSERT_NE(dup, nullptr);
  EXPECT_EQ(dup->same_as, 1u);
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("j1").state, job_state::succeeded);
}

// Hole 4: U+0000 in a stage's output can never be stored (jsonb refuses
// it); the attempt fails for good instead of failing every write.
TEST_F(engine_test, StageOutputWithANulCharacterFailsTheStageForGood) {
  auto sup = start_pipeline(
      one_stage(probe("a", {{"output", R"({"text":"a\u0000b"})"}}, 5)));
  deliver(sup, "j1", 1, 1);
  run_to_quiescence();
  auto& row = db->jobs.at("j1");
  EXPECT_EQ(row.state, job_state::dead_lettered);
  EXPECT_NE(row.last_error.find("invalid_output"), std::string::npos)
      << row.last_error;
  EXPECT_EQ(probes->count("j1", "a"), 1); // not retried
  EXPECT_TRUE(row.checkpoints.empty());
}

// Hole 4: a write PostgreSQL refuses is not retried forever (the job held
// its slot and message for good); the job is dead-lettered with the error.
TEST_F(engine_test, AWriteTheStoreRefusesDeadLettersTheJob) {
  auto sup = start_pipeline(one_stage(probe("a")));
  db->refuse_next_writes = 1;
  deliver(sup, "j1", 1, 1);
  run_to_quiescence();
  auto& row = db->jobs.at("j1");
  EXPECT_EQ(row.state, job_state::dead_lettered);
  EXPECT_NE(row.last_error.find("store_write_failed"), std::string::npos)
      << row.last_error;
  ASSERT_EQ(finished->size(), 1u);
  EXPECT_EQ(finished->at(0).result.state, job_state::dead_lettered);
}

TEST_F(engine_test, WhenNothingCanBeWrittenTheDeliveryIsGivenUp) {
  auto sup = start_pipeline(one_stage(probe("a")));
  db->refuse_next_writes = 1000;
  deliver(sup, "j1", 1, 1);
  run_to_quiescence();
  ASSERT_EQ(finished->size(), 1u);
  EXPECT_EQ(finished->at(0).result.outcome, job_outcome::unrecordable);
  EXPECT_LT(db->refuse_next_writes, 1000);
  EXPECT_GT(db->refuse_next_writes, 995); // two writes, then it stopped
}

// Hole 5: junk published with a live job's id dead-lettered that job. It
// is recorded under an id of its own; the job is untouched.
TEST_F(engine_test, JunkNamingAnExistingJobIsRecordedUnderItsOwnId) {
  auto& row = db->jobs["live-1"];
  row.spec.job_id = "live-1";
  row.spec.pipeline = "p";
  row.state = job_state::running;
  row.epoch = 2;
  auto sup = start_pipeline(one_stage(probe("a")));
  job_spec junk;
  junk.job_id = "live-1";
  junk.pipeline = "p";
  junk.payload = R"({"raw":"junk","key":"live-1"})";
  junk.invalid_reason = "invalid_payload: malformed JSON";
  junk.stream_seq = 12;
  junk.submitted_at_ms = 5000;
  caf::anon_send(sup, submit_atom::value, junk, std::uint64_t{1});
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("live-1").state, job_state::running);
  EXPECT_EQ(db->jobs.at("live-1").epoch, 2);
  ASSERT_EQ(db->jobs.count("invalid-12-5000"), 1u);
  EXPECT_EQ(db->jobs.at("invalid-12-5000").state, job_state::dead_lettered);
  ASSERT_EQ(finished->size(), 1u);
  EXPECT_EQ(finished->at(0).result.state, job_state::dead_lettered);
  // The same message delivered again is recognised as recorded.
  caf::anon_send(sup, submit_atom::value, junk, std::uint64_t{2});
  run_to_quiescence();
  ASSERT_EQ(finished->size(), 2u);
  EXPECT_EQ(finished->at(1).result.outcome, job_outcome::already_terminal);
}

// Hole 5: a delivery on pipeline `p` naming a job of pipeline `other`
// touches nothing and runs nothing.
TEST_F(engine_test, ADeliveryNamingAnotherPipelinesJobIsAConflict) {
  auto& row = db->jobs["payroll-1"];
  row.spec.job_id = "payroll-1";
  row.spec.pipeline = "payroll";
  row.state = job_state::running;
  row.epoch = 3;
  auto sup = start_pipeline(one_stage(probe("a")));
  deliver(sup, "payroll-1", 1, 1);
  run_to_quiescence();
  ASSERT_EQ(finished->size(), 1u);
  EXPECT_EQ(finished->at(0).result.outcome, job_outcome::conflict);
  EXPECT_EQ(probes->count("payroll-1", "a"), 0);
  EXPECT_EQ(db->jobs.at("payroll-1").epoch, 3);
  EXPECT_EQ(db->jobs.at("payroll-1").state, job_state::running);
}
