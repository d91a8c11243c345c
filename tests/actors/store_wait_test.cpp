// Jobs that wait in the store (docs/scheduling.md), under CAF's
// deterministic coordinator: a delivery due later and a long retry wait are
// handed to the store and their delivery acked; a stale message of a job the
// store holds changes nothing; the scheduler's publication runs it.
#include <gtest/gtest.h>

#include "actors/delivery_verdict.hpp"
#include "engine_fixture.hpp"
#include "messages/errc.hpp"

using namespace troupe;
using namespace troupe::test;

TEST_F(engine_test, ADeliveryDueLaterIsHandedToTheStoreAndAcked) {
  auto sup = start_pipeline(one_stage(probe("a")));
  auto spec = spec_of("later");
  spec.fresh = true; // even a fresh delivery does not run before its time
  spec.run_at_ms = now_ms() + 60000;
  caf::anon_send(sup, submit_atom::value, spec, std::uint64_t{1});
  run_to_quiescence();
  auto* res = result_of(*finished, 1);
  ASSERT_NE(res, nullptr);
  EXPECT_EQ(res->outcome, job_outcome::waiting_in_store);
  EXPECT_EQ(verdict_for(*res).action, delivery_action::ack);
  auto& row = db->jobs.at("later");
  EXPECT_EQ(row.state, job_state::scheduled);
  EXPECT_EQ(row.run_at_ms, spec.run_at_ms);
  EXPECT_EQ(probes->count("later", "a"), 0);
  EXPECT_EQ(stats(sup).running, 0);
}

TEST_F(engine_test, TheSameKeyDueLaterLeavesTheExistingJobAlone) {
  auto sup = start_pipeline(one_stage(probe("a")));
  submit(sup, "k", 1);
  run_to_quiescence();
  ASSERT_EQ(db->jobs.at("k").state, job_state::succeeded);
  auto spec = spec_of("k");
  spec.run_at_ms = now_ms() + 60000;
  caf::anon_send(sup, submit_atom::value, spec, std::uint64_t{2});
  run_to_quiescence();
  auto* res = result_of(*finished, 2);
  ASSERT_NE(res, nullptr);
  EXPECT_EQ(res->outcome, job_outcome::waiting_in_store);
  EXPECT_EQ(db->jobs.at("k").state, job_state::succeeded);
  EXPECT_EQ(db->jobs.at("k").run_at_ms, 0);
}

TEST_F(engine_test, ALongRetryWaitIsKeptInTheStoreNotOnTheNode) {
  store_after = std::chrono::seconds{10};
  auto sc = probe("a", {{"fail_first", 1}}, 3);
  sc.retry.initial = std::chrono::minutes{1};
  sc.retry.max = std::chrono::minutes{1};
  auto sup = start_pipeline(one_stage(sc));
  submit(sup, "j", 1);
  run_to_quiescence();
  auto* res = result_of(*finished, 1);
  ASSERT_NE(res, nullptr);
  EXPECT_EQ(res->outcome, job_outcome::waiting_in_store);
  EXPECT_EQ(verdict_for(*res).action, delivery_action::ack);
  auto& row = db->jobs.at("j");
  EXPECT_EQ(row.state, job_state::retrying);
  EXPECT_GE(row.run_at_ms, now_ms() + 59000);
  // Nothing waits on the node: no actor, no parked record, no timer ran a
  // second attempt.
  auto st = stats(sup);
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.waiting, 0);
  EXPECT_EQ(probes->count("j", "a"), 1);
  // A stale message (the original, redelivered) changes nothing.
  submit(sup, "j", 2);
  run_to_quiescence();
  ASSERT_NE(result_of(*finished, 2), nullptr);
  EXPECT_EQ(result_of(*finished, 2)->outcome, job_outcome::waiting_in_store);
  EXPECT_EQ(probes->count("j", "a"), 1);
  // The scheduler publishes it when due: the retry runs, as attempt 2.
  auto spec = spec_of("j");
  spec.gen = db->publish_due("j");
  spec.resumed = true;
  caf::anon_send(sup, submit_atom::value, spec, std::uint64_t{3});
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("j").state, job_state::succeeded);
  ASSERT_EQ(probes->count("j", "a"), 2);
  EXPECT_EQ(probes->calls.back().attempt, 2);
  EXPECT_EQ(db->jobs.at("j").gen, 1);
}

TEST_F(engine_test, AShortRetryWaitStaysInMemory) {
  store_after = std::chrono::seconds{10};
  auto sc = probe("a", {{"fail_first", 1}}, 3);
  sc.retry.initial = std::chrono::seconds{2};
  sc.retry.max = std::chrono::seconds{2};
  auto sup = start_pipeline(one_stage(sc));
  submit(sup, "j", 1);
  run_messages();
  EXPECT_EQ(db->jobs.at("j").run_at_ms, 0);
  EXPECT_EQ(stats(sup).waiting, 1);
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("j").state, job_state::succeeded);
  EXPECT_EQ(result_of(*finished, 1)->outcome, job_outcome::finished);
}

TEST_F(engine_test, AMessageOlderThanTheStoresPublicationIsStale) {
  auto sup = start_pipeline(one_stage(probe("a")));
  auto& row = db->jobs["old"];
  row.spec = spec_of("old");
  row.state = job_state::running;
  row.gen = 2; // published twice by schedulers (a rescued job)
  auto spec = spec_of("old");
  spec.gen = 1;
  caf::anon_send(sup, submit_atom::value, spec, std::uint64_t{1});
  run_to_quiescence();
  ASSERT_NE(result_of(*finished, 1), nullptr);
  EXPECT_EQ(result_of(*finished, 1)->outcome, job_outcome::waiting_in_store);
  EXPECT_EQ(probes->count("old", "a"), 0);
  spec.gen = 2;
  caf::anon_send(sup, submit_atom::value, spec, std::uint64_t{2});
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("old").state, job_state::succeeded);
  EXPECT_EQ(probes->count("old", "a"), 1);
}

TEST_F(engine_test, APublicationTheStoreHasNotRecordedYetIsHandedBack) {
  // The scheduler's transaction rolled back after the stream stored its
  // message: acking it would lose the job (its republication is dropped
  // as a duplicate). It goes back to the stream for a while instead.
  auto sup = start_pipeline(one_stage(probe("a")));
  auto& row = db->jobs["early"];
  row.spec = spec_of("early");
  row.state = job_state::scheduled;
  row.run_at_ms = now_ms();
  auto spec = spec_of("early");
  spec.gen = 1;
  caf::anon_send(sup, submit_atom::value, spec, std::uint64_t{1});
  run_to_quiescence();
  auto* res = result_of(*finished, 1);
  ASSERT_NE(res, nullptr);
  EXPECT_EQ(res->outcome, job_outcome::abandoned);
  EXPECT_EQ(verdict_for(*res).action, delivery_action::nak);
  EXPECT_EQ(probes->count("early", "a"), 0);
}
