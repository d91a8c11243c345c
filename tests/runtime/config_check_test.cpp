// `troupe config check` as an operator runs it.
#include <array>
#include <cctype>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>
#include <sys/wait.h>

namespace {

std::pair<int, std::string> run(const std::string& args) {
  std::string out;
  FILE* p =
      popen((std::string{TROUPE_BINARY} + " " + args + " 2>&1").c_str(), "r");
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0)
    out.append(buf.data(), n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

} // namespace

TEST(ConfigCheck, TheExampleConfigPasses) {
  auto [rc, out] =
      run("config check " TROUPE_SOURCE_DIR "/config/troupe.example.toml");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("ok"), std::string::npos);
}

TEST(ConfigCheck, FiveMistakesGiveFiveLocatedLinesAndFailure) {
  auto [rc, out] =
      run("config check " TROUPE_SOURCE_DIR "/config/bad.example.toml");
  EXPECT_NE(rc, 0);
  int located = 0;
  std::size_t pos = 0;
  const std::string marker = "bad.example.toml:";
  while ((pos = out.find(marker, pos)) != std::string::npos) {
    pos += marker.size();
    located += pos < out.size() && std::isdigit(out[pos]); // file:LINE: ...
  }
  EXPECT_EQ(located, 5) << out;
  EXPECT_NE(out.find("bad.example.toml:13: "
                     "pipelines.ingest.stages[1].retry.multiplier: must be >= "
                     "1.0 (got 0.5)"),
            std::string::npos)
      << out;
}
