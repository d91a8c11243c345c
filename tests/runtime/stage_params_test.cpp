// Stage kinds and their parameters as the config loader checks them
// against the catalogue of this binary (runtime/exec/exec_stage.hpp:
// stage_catalog()), and against kinds an embedding program registers.
#include <gtest/gtest.h>

#include "actors/builtin_stages.hpp"
#include "actors/stage_kind.hpp"
#include "config/config_loader.hpp"
#include "messages/errc.hpp"
#include "runtime/exec/exec_stage.hpp"

using namespace troupe;

namespace {

config_context catalogue_context() {
  config_context ctx;
  ctx.stage_kinds = stage_catalog();
  return ctx;
}

config_result parse(const std::string& text,
                    config_context ctx = catalogue_context()) {
  return parse_config(text, "t.toml", ctx);
}

} // namespace

TEST(StageParams, StagesNeedNameAndKnownKind) {
  // `embed` stands for a C++ kind registered without a schema: it judges
  // its own parameters, the loader accepts any.
  auto ctx = catalogue_context();
  ctx.stage_kinds = {{"noop", {}}, {"embed", {}, true}};
  auto r = parse(R"(
[pipelines.p]
stages = [
  { kind = "noop" },
  { name = "b" },
  { name = "", kind = "noop" },
  { name = "d", kind = "sleep" },
  { name = "e", kind = "embed", model = "small" },
  { name = "f", kind = "" },
  { name = "g", kind = 5 },
]
)",
                 ctx);
  ASSERT_EQ(r.problems.size(), 6u) << r.problems.back().to_string();
  EXPECT_EQ(r.problems[0].message, "missing key 'name'");
  EXPECT_EQ(r.problems[1].message, "missing key 'kind'");
  EXPECT_EQ(r.problems[2].path, "pipelines.p.stages[2].name");
  EXPECT_EQ(r.problems[3].path, "pipelines.p.stages[3].kind");
  EXPECT_NE(r.problems[3].message.find("known: noop, embed"),
            std::string::npos);
  EXPECT_EQ(r.problems[4].path, "pipelines.p.stages[5].kind");
  EXPECT_EQ(r.problems[5].message, "must be a string, got an integer");
}

TEST(StageParams, StagesAreCheckedPerKind) {
  auto r = parse(R"(
[pipelines.p]
stages = [
  { name = "a", kind = "sleep" },
  { name = "b", kind = "exec", command = [] },
  { name = "c", kind = "fault", probability = 2.0 },
  { name = "c", kind = "noop", colour = "red" },
]
)");
  std::vector<std::string> paths;
  for (auto& p : r.problems)
    paths.push_back(p.path + " " + p.message);
  ASSERT_EQ(r.problems.size(), 5u) << ::testing::PrintToString(paths);
  EXPECT_NE(r.problems[0].message.find("needs duration"), std::string::npos);
  EXPECT_EQ(r.problems[1].path, "pipelines.p.stages[1].command");
  EXPECT_EQ(r.problems[2].path, "pipelines.p.stages[2].probability");
  EXPECT_NE(r.problems[3].message.find("duplicate stage name"),
            std::string::npos);
  EXPECT_EQ(r.problems[4].path, "pipelines.p.stages[3].colour");
}

TEST(StageParams, FaultParamsAreCheckedByType) {
  auto r = parse(R"(
[pipelines.p]
stages = [
  { name = "ok", kind = "fault", fail_first = 2, probability = 1, throw = true,
    permanent = false, duration = "10ms" },
  { name = "bad", kind = "fault", fail_first = -1, probability = "often",
    throw = "yes", duration = "soon" },
]
)");
  std::vector<std::string> paths;
  for (auto& p : r.problems)
    paths.push_back(p.path);
  EXPECT_EQ(paths, (std::vector<std::string>{
                       "pipelines.p.stages[1].fail_first",
                       "pipelines.p.stages[1].probability",
                       "pipelines.p.stages[1].throw",
                       "pipelines.p.stages[1].duration",
                   }));
}

TEST(StageParams, KindParamsBecomeJson) {
  auto r = parse(R"(
[pipelines.p]
stages = [ { name = "x", kind = "exec", command = ["a", "b"], env = { K = "v" },
             retryable_exit_codes = [75, 3] } ]
)");
  ASSERT_TRUE(r.ok()) << r.problems[0].to_string();
  auto& params = r.config->pipelines.at("p").stages[0].params;
  EXPECT_EQ(params.at("command").size(), 2u);
  EXPECT_EQ(params.at("env").at("K"), "v");
  EXPECT_EQ(params.at("retryable_exit_codes")[1], 3);
}

TEST(StageParams, EveryTomlValueTypeConvertsToJson) {
  auto ctx = catalogue_context();
  ctx.stage_kinds = {{"custom", {}, true}};
  auto r = parse(R"(
[pipelines.p]
stages = [ { name = "x", kind = "custom", s = "text", i = -42, f = 2.5,
             b = true, a = [1, "two", [3.0]], t = { inner = { deep = false } },
             d = 1979-05-27 } ]
)",
                 ctx);
  ASSERT_TRUE(r.ok()) << r.problems.at(0).to_string();
  auto& params = r.config->pipelines.at("p").stages[0].params;
  EXPECT_EQ(params, nlohmann::json::parse(R"({
    "s": "text", "i": -42, "f": 2.5, "b": true, "a": [1, "two", [3.0]],
    "t": {"inner": {"deep": false}}, "d": "1979-05-27"})"));
  EXPECT_TRUE(params.at("i").is_number_integer());
  EXPECT_TRUE(params.at("f").is_number_float());
}

TEST(StageParams, ExecStageEnvironmentAndConcurrencyAreReadAndChecked) {
  auto r = parse(R"(
[pipelines.p]
stages = [ { name = "a", kind = "exec", command = ["true"],
             inherit_env = ["MY_*", "TZ"], max_concurrency = 2 } ]
)");
  for (auto& p : r.problems)
    ADD_FAILURE() << p.to_string();
  ASSERT_TRUE(r.ok());
  auto& params = r.config->pipelines.at("p").stages[0].params;
  EXPECT_EQ(params.at("inherit_env"),
            nlohmann::json::parse(R"(["MY_*", "TZ"])"));
  EXPECT_EQ(params.at("max_concurrency"), 2);
  auto bad = parse(R"(
[pipelines.p]
stages = [
  { name = "a", kind = "exec", command = ["true"], inherit_env = ["TROUPE_PG_URL"] },
  { name = "b", kind = "exec", command = ["true"], inherit_env = "HOME", max_concurrency = 0 },
  { name = "c", kind = "exec", command = ["true"], inherit_env = ["A*B", "", "*"],
    max_concurrency = "4" },
]
)");
  std::vector<std::string> where;
  for (auto& p : bad.problems)
    where.push_back(std::to_string(p.line) + " " + p.path);
  EXPECT_EQ(where, (std::vector<std::string>{
                       "4 pipelines.p.stages[0].inherit_env",
                       "5 pipelines.p.stages[1].inherit_env",
                       "5 pipelines.p.stages[1].max_concurrency",
                       "6 pipelines.p.stages[2].inherit_env",
                       "6 pipelines.p.stages[2].inherit_env",
                       "6 pipelines.p.stages[2].inherit_env",
                       "7 pipelines.p.stages[2].max_concurrency",
                   }));
  ASSERT_EQ(bad.problems.size(), 7u);
  EXPECT_NE(bad.problems[0].message.find("TROUPE_PG_URL"), std::string::npos)
      << bad.problems[0].to_string();
  EXPECT_NE(bad.problems[2].message.find("at least 1"), std::string::npos)
      << bad.problems[2].to_string();
  EXPECT_NE(bad.problems[5].message.find("TROUPE_"), std::string::npos)
      << bad.problems[5].to_string();
}

// The bug this catalogue fixed: a C++ kind registered as docs/stages.md
// describes was refused by the loader, which knew four names only.
TEST(StageParams, AKindRegisteredWithASchemaIsCheckedLikeABuiltIn) {
  auto reg = builtin_stage_registry();
  reg.add("embed", make_noop_stage,
          {"embed",
           {{"model", param_type::string, true},
            {"batch", param_type::positive_integer}}});
  config_context ctx;
  ctx.stage_kinds = reg.schemas();
  auto ok = parse(R"(
[pipelines.p]
stages = [ { name = "e", kind = "embed", model = "small", batch = 8 } ]
)",
                  ctx);
  ASSERT_TRUE(ok.ok()) << ok.problems.at(0).to_string();
  auto def = make_pipeline_def(ok.config->pipelines.at("p"), reg);
  EXPECT_TRUE(def) << describe(def.error());

  auto bad = parse(R"(
[pipelines.p]
stages = [
  { name = "e", kind = "embed", batch = 0, colour = "red" },
]
)",
                   ctx);
  std::vector<std::string> got;
  for (auto& p : bad.problems)
    got.push_back(std::to_string(p.line) + " " + p.path + ": " + p.message);
  EXPECT_EQ(got, (std::vector<std::string>{
                     "4 pipelines.p.stages[0]: kind 'embed' needs model = "
                     "\"...\"",
                     "4 pipelines.p.stages[0].batch: must be an integer of "
                     "at least 1",
                     "4 pipelines.p.stages[0].colour: unknown parameter for "
                     "kind 'embed'",
                 }));
}

TEST(StageParams, TheCatalogueHasEveryKindThisBinaryRuns) {
  std::vector<std::string> kinds;
  for (auto& k : stage_catalog())
    kinds.push_back(k.kind);
  EXPECT_EQ(kinds, (std::vector<std::string>{"callback", "fault", "noop",
                                             "sleep", "exec"}));
}

TEST(StageParams, TheShippedConfigurationsPassWithEveryKindChecked) {
  for (auto file : {"/config/troupe.example.toml", "/config/demo.toml"}) {
    auto r = load_config_file(std::string{TROUPE_SOURCE_DIR} + file,
                              catalogue_context());
    EXPECT_TRUE(r.ok()) << file << ": " << r.problems.at(0).to_string();
  }
}
