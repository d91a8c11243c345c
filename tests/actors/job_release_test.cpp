// A job this node gave up while the store may still say it runs it
// (actors/pipeline_release.cpp), under CAF's deterministic coordinator: the
// store is asked to queue it again, so that other nodes need not wait for
// this node's lease, and a delivery that arrives meanwhile is handed back.
#include <gtest/gtest.h>

#include "actors/delivery_verdict.hpp"
#include "engine_fixture.hpp"
#include "messages/errc.hpp"

using namespace troupe;
using namespace troupe::test;

TEST_F(engine_test, AClaimWhoseReplyWasLostIsReleasedForTheNextDelivery) {
  auto sup = start_pipeline(one_stage(probe("a")));
  db->lose_next_claim_replies = 1;
  submit(sup, "doubt", 1);
  run_to_quiescence();
  auto* res = result_of(*finished, 1);
  ASSERT_NE(res, nullptr);
  EXPECT_EQ(res->outcome, job_outcome::abandoned);
  EXPECT_EQ(db->releases, 1);
  auto& row = db->jobs.at("doubt");
  // The claim committed (epoch 1, running) and the release undid it.
  EXPECT_EQ(row.state, job_state::queued);
  EXPECT_EQ(row.epoch, 2);
  EXPECT_EQ(probes->count("doubt", "a"), 0);
  submit(sup, "doubt", 2);
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("doubt").state, job_state::succeeded);
  EXPECT_EQ(probes->count("doubt", "a"), 1);
}

TEST_F(engine_test, ADeliveryDuringTheReleaseIsHandedBackNotRun) {
  auto sup = start_pipeline(one_stage(probe("a")));
  db->lose_next_claim_replies = 1;
  db->hold_releases = true;
  submit(sup, "doubt", 1);
  // Messages only: firing timers would time the release out (30 s), which
  // lets new starts through again.
  run_messages();
  ASSERT_NE(result_of(*finished, 1), nullptr);
  ASSERT_EQ(db->held_releases.size(), 1u);
  EXPECT_EQ(db->jobs.at("doubt").state, job_state::running);
  // Run now, it would be released under its feet: handed back instead.
  submit(sup, "doubt", 2);
  run_messages();
  auto* res = result_of(*finished, 2);
  ASSERT_NE(res, nullptr);
  EXPECT_EQ(res->outcome, job_outcome::requeued);
  EXPECT_EQ(res->requeue_ms, abandoned_nak_delay_ms);
  EXPECT_EQ(probes->count("doubt", "a"), 0);
  caf::anon_send(store, answer_releases_write());
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("doubt").state, job_state::queued);
  submit(sup, "doubt", 3);
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("doubt").state, job_state::succeeded);
  EXPECT_EQ(probes->count("doubt", "a"), 1);
}

TEST_F(engine_test, AJobOfANewerRunIsNotReleased) {
  // The store answers a claim with unavailable but another node's run
  // holds the job: the release changes nothing of that run.
  auto sup = start_pipeline(one_stage(probe("a")));
  auto& row = db->jobs["theirs"];
  row.spec = spec_of("theirs");
  row.state = job_state::scheduled;
  row.run_at_ms = now_ms();
  auto spec = spec_of("theirs");
  spec.gen = 1; // a publication the store has not recorded: unavailable
  caf::anon_send(sup, submit_atom::value, spec, std::uint64_t{1});
  run_to_quiescence();
  ASSERT_NE(result_of(*finished, 1), nullptr);
  EXPECT_EQ(result_of(*finished, 1)->outcome, job_outcome::abandoned);
  EXPECT_EQ(db->releases, 1);
  EXPECT_EQ(db->jobs.at("theirs").state, job_state::scheduled);
  EXPECT_EQ(db->jobs.at("theirs").epoch, 0);
}
