// Stages as a graph (config/stage_graph.hpp): `after` is read, resolved and
// checked with located errors; a plain list stays a list.
#include <gtest/gtest.h>

#include "config/stage_graph.hpp"
#include "config_test_support.hpp"

namespace troupe::test {
namespace {

std::string all_problems(const config_result& r) {
  std::string out;
  for (auto& p : r.problems)
    out += p.to_string() + "\n";
  return out;
}

const char* diamond = R"([node]
id = "n1"
[[pipelines.g.stages]]
name = "fetch"
kind = "noop"
[[pipelines.g.stages]]
name = "a"
kind = "noop"
after = ["fetch"]
[[pipelines.g.stages]]
name = "b"
kind = "noop"
after = ["fetch"]
[[pipelines.g.stages]]
name = "c"
kind = "noop"
after = ["a"]
[[pipelines.g.stages]]
name = "join"
kind = "noop"
after = ["c", "b"]
)";

TEST(StageGraph, AfterNamesTheStagesAStageNeeds) {
  auto r = parse(diamond);
  ASSERT_TRUE(r.ok()) << all_problems(r);
  const auto& pc = r.config->pipelines.at("g");
  auto g = make_stage_graph(pc);
  EXPECT_TRUE(g.parallel);
  using v = std::vector<std::int32_t>;
  EXPECT_EQ(g.needs, (std::vector<v>{{}, {0}, {0}, {1}, {2, 3}}));
  EXPECT_EQ(g.ancestors[4], (v{0, 1, 2, 3}));
  EXPECT_EQ(g.ancestors[3], (v{0, 1}));
  EXPECT_EQ(g.ready({false, false, false, false, false}), (v{0}));
  EXPECT_EQ(g.ready({true, false, false, false, false}), (v{1, 2}));
  // c may start as soon as a is done, whatever b does.
  EXPECT_EQ(g.ready({true, true, false, false, false}), (v{2, 3}));
  EXPECT_EQ(g.ready({true, true, true, true, true}), v{});
}

TEST(StageGraph, APlainListIsALinearGraph) {
  auto r = parse(R"([node]
id = "n1"
[pipelines.p]
stages = [ { name = "a", kind = "noop" }, { name = "b", kind = "noop" },
           { name = "c", kind = "noop", after = ["b"] } ]
)");
  ASSERT_TRUE(r.ok()) << all_problems(r);
  auto g = make_stage_graph(r.config->pipelines.at("p"));
  EXPECT_FALSE(g.parallel); // naming the stage before changes nothing
  EXPECT_EQ(g.ancestors[2], (std::vector<std::int32_t>{0, 1}));
}

struct bad_graph {
  const char* stages;
  const char* expected;
};

TEST(StageGraph, BadGraphsAreRefusedWithTheStageAndLine) {
  const bad_graph cases[] = {
      {R"(stages = [ { name = "a", kind = "noop" },
  { name = "b", kind = "noop", after = ["nope"] } ])",
       "t.toml:6: pipelines.g.stages[1].after: stage \"b\" unknown stage "
       "\"nope\""},
      {R"(stages = [ { name = "a", kind = "noop", after = ["a"] } ])",
       "pipelines.g.stages[0].after: stage \"a\" a stage cannot come after "
       "itself"},
      {R"(stages = [ { name = "a", kind = "noop", after = ["c"] },
  { name = "b", kind = "noop", after = ["a"] },
  { name = "c", kind = "noop", after = ["b"] } ])",
       "cycle: a -> b -> c -> a"},
      {R"(stages = [ { name = "a", kind = "noop", after = ["b"] },
  { name = "b", kind = "noop", after = [] } ])",
       "stage \"a\" needs \"b\", which is listed after it"},
      {R"(stages = [ { name = "a", kind = "noop" },
  { name = "b", kind = "noop", after = ["a"] },
  { name = "c", kind = "noop", after = ["a"] } ])",
       "stage \"c\" is the last stage, whose output is the job's result, so "
       "it must come after every other stage; it does not come after \"b\""},
      {R"(stages = [ { name = "a", kind = "noop", after = "x" } ])",
       "pipelines.g.stages[0].after: must be an array of stage names"},
      {R"(stages = [ { name = "a", kind = "noop" },
  { name = "b", kind = "noop", after = ["a", "a"] } ])",
       "names \"a\" twice"},
      {R"(stages = [ { name = "a", kind = "noop" },
  { name = "b", kind = "noop", after = [] },
  { name = "c", kind = "noop", spawn = true, after = ["a", "b"] } ])",
       "spawn = true cannot be used in a pipeline whose stages run in "
       "parallel"},
  };
  for (const auto& c : cases) {
    auto r = parse(std::string{"[node]\nid = \"n1\"\n\n[pipelines.g]\n"} +
                   c.stages + "\n");
    EXPECT_FALSE(r.ok()) << c.stages;
    EXPECT_NE(all_problems(r).find(c.expected), std::string::npos)
        << "expected: " << c.expected << "\ngot:\n"
        << all_problems(r);
  }
}

} // namespace
} // namespace troupe::test
