// `troupe config check` as an operator runs it: the real binary, its exit
// code and what it prints.
#include <array>
#include <cstdio>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sys/wait.h>

namespace {

/// Runs the troupe binary with `args` (stderr folded into stdout); `env`
/// is prepended to the shell command, e.g. "TROUPE_PG_URL=x".
std::pair<int, std::string> run(const std::string& args,
                                const std::string& env = "") {
  std::string out;
  auto cmd =
      env + (env.empty() ? "" : " ") + TROUPE_BINARY + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr)
    return {-1, "popen failed"};
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0)
    out.append(buf.data(), n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

const std::string example = TROUPE_SOURCE_DIR "/config/troupe.example.toml";
const std::string bad = TROUPE_SOURCE_DIR "/config/bad.example.toml";

} // namespace

TEST(ConfigCheck, TheExampleConfigPasses) {
  auto [rc, out] = run("config check " + example);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("troupe.example.toml: ok (2 pipelines)"),
            std::string::npos)
      << out;
}

TEST(ConfigCheck, FiveMistakesGiveFiveLocatedLinesAndFailure) {
  auto [rc, out] = run("config check " + bad);
  EXPECT_NE(rc, 0);
  // file:line: path: message
  const std::regex located{R"(^.*bad\.example\.toml:([0-9]+): )"
                           R"(([a-z_]+(\.[a-z_]+|\[[0-9]+\])+): .+$)"};
  std::vector<std::pair<std::string, std::string>> found;
  for (auto& line : lines_of(out)) {
    std::smatch m;
    if (std::regex_match(line, m, located))
      found.emplace_back(m[1], m[2]);
  }
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"4", "node.max_inflight"},
      {"7", "nats.url"},
      {"8", "nats.ack_wait"},
      {"13", "pipelines.ingest.stages[1].retry.multiplier"},
      {"14", "pipelines.ingest.stages[2].kind"},
  };
  EXPECT_EQ(found, expected) << out;
  EXPECT_NE(out.find("bad.example.toml:13: "
                     "pipelines.ingest.stages[1].retry.multiplier: must be >= "
                     "1.0 (got 0.5)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("5 problems"), std::string::npos) << out;
}

TEST(ConfigCheck, ABadValueFromTheEnvironmentFailsWithoutShowingThePassword) {
  auto [rc, out] = run("config check " + example,
                       "TROUPE_PG_URL='mysql://troupe:topsecret@db/x'");
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("env:TROUPE_PG_URL: postgres.url: "
                     "\"mysql://troupe:***@db/x\""),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("topsecret"), std::string::npos) << out;
}

TEST(ConfigCheck, AnUnreadableFileIsReportedAndFails) {
  auto [rc, out] = run("config check " + example + " /nonexistent/x.toml");
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("troupe.example.toml: ok"), std::string::npos) << out;
  EXPECT_NE(out.find("/nonexistent/x.toml: cannot read file: "),
            std::string::npos)
      << out;
}
