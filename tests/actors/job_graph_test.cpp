// Deterministic tests of parallel stages (actors/job_graph.cpp): virtual
// time, one thread, the in-memory store.
#include "engine_fixture.hpp"

using namespace troupe;
using namespace troupe::test;
using nlohmann::json;

namespace {

stage_config after(stage_config sc, std::vector<std::string> names) {
  sc.after = std::move(names);
  return sc;
}

/// fetch -> {a, b, c} -> join, with `b` given `b_params`.
pipeline_config diamond(json b_params, int b_attempts = 5) {
  pipeline_config pc;
  pc.name = "p";
  pc.stages = {
      engine_test::probe("fetch", {{"output", R"({"doc":"d"})"}}),
      after(engine_test::probe("a", {{"duration_ms", 300}}), {"fetch"}),
      after(engine_test::probe("b", std::move(b_params), b_attempts),
            {"fetch"}),
      after(engine_test::probe("c", {{"duration_ms", 300}}), {"fetch"}),
      after(engine_test::probe("join"), {"a", "b", "c"}),
  };
  return pc;
}

const probe_call* call_of(const probe_log& log, const std::string& stage,
                          int attempt) {
  for (auto& c : log.calls)
    if (c.stage == stage && c.attempt == attempt)
      return &c;
  return nullptr;
}

} // namespace

TEST_F(engine_test, ReadyStagesStartTogetherAndAFailingOneRetriesAlone) {
  auto sup = start_pipeline(
      diamond({{"fail_first", 2}, {"duration_ms", 100}, {"output", "7"}}));
  auto t0 = now_ms();
  submit(sup, "j1");
  run_to_quiescence();
  ASSERT_EQ(db->jobs.at("j1").state, job_state::succeeded);
  // a, b and c started at once, as soon as fetch was done.
  for (auto stage : {"a", "b", "c"}) {
    ASSERT_NE(call_of(*probes, stage, 1), nullptr) << stage;
    EXPECT_EQ(call_of(*probes, stage, 1)->at_ms, t0) << stage;
  }
  // Only b retried: +100 (its run) +100 (backoff), then +100 +200.
  EXPECT_EQ(probes->count("j1", "a"), 1);
  EXPECT_EQ(probes->count("j1", "c"), 1);
  EXPECT_EQ(probes->count("j1", "b"), 3);
  EXPECT_EQ(call_of(*probes, "b", 2)->at_ms, t0 + 200);
  EXPECT_EQ(call_of(*probes, "b", 3)->at_ms, t0 + 500);
  // join waited for b's checkpoint, and got every output upstream.
  auto join = call_of(*probes, "join", 1);
  ASSERT_NE(join, nullptr);
  EXPECT_EQ(join->at_ms, t0 + 600);
  auto prev = json::parse(join->input)["previous"];
  EXPECT_EQ(prev["fetch"], json::parse(R"({"doc":"d"})"));
  EXPECT_EQ(prev["b"], 7);
  EXPECT_TRUE(prev.contains("a") && prev.contains("c"));
  // a's input carries what it comes after, and nothing of its siblings.
  auto a_prev = json::parse(call_of(*probes, "a", 1)->input)["previous"];
  EXPECT_EQ(a_prev.size(), 1u);
  EXPECT_EQ(db->jobs.at("j1").checkpoints.size(), 5u);
  EXPECT_EQ(db->jobs.at("j1").attempts.size(), 7u); // 5 ok, 2 failed
}

TEST_F(engine_test, ABranchOutOfAttemptsStopsItsSiblingsAndDeadLetters) {
  auto sup = start_pipeline(
      diamond({{"fail_first", 9}, {"retryable", false}, {"duration_ms", 50}}));
  // a and c hang instead of finishing: they must be stopped.
  submit(sup, "j1");
  run_to_quiescence();
  auto& row = db->jobs.at("j1");
  EXPECT_EQ(row.state, job_state::dead_lettered);
  EXPECT_EQ(row.checkpoints.count(1), 0u); // a was stopped at 50 ms of 300
  EXPECT_EQ(probes->count("j1", "b"), 1);
  EXPECT_EQ(probes->count("j1", "join"), 0);
  EXPECT_GE(probes->cleanups, 2); // the stopped siblings' stage actors
  ASSERT_EQ(finished->size(), 1u);
  EXPECT_EQ(finished->at(0).result.failed_stage, 2);
}

TEST_F(engine_test, AGraphJobResumesFromItsCheckpointsAlone) {
  pipeline_config pc;
  pc.name = "p";
  pc.stages = {
      probe("fetch"),
      after(probe("a"), {"fetch"}),
      after(probe("b", {{"duration_ms", 1000}}), {"fetch"}),
      after(probe("c"), {"fetch"}),
      after(probe("join"), {"a", "b", "c"}),
  };
  auto sup = start_pipeline(pc);
  submit(sup, "j1", 7);
  run_messages(); // fetch, a and c end; b runs for 1 s
  ASSERT_EQ(db->jobs.at("j1").checkpoints.size(), 3u);
  auto job = job_actor_of(sup, "j1");
  ASSERT_TRUE(job);
  caf::anon_send_exit(job, caf::exit_reason::kill);
  run_to_quiescence();
  EXPECT_EQ(db->jobs.at("j1").state, job_state::succeeded);
  for (auto stage : {"fetch", "a", "c", "join"})
    EXPECT_EQ(probes->count("j1", stage), 1) << stage;
  EXPECT_EQ(probes->count("j1", "b"), 2); // killed once, then again
  ASSERT_EQ(finished->size(), 1u);
  EXPECT_EQ(finished->at(0).result.state, job_state::succeeded);
}
