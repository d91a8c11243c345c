// Runs the real `troupe` binary as a user would.
#include <array>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>
#include <sys/wait.h>

namespace {

struct run_result {
  int status = -1;
  std::string output;
};

run_result run(const std::string& args) {
  run_result r;
  std::string cmd = std::string{TROUPE_BINARY} + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p)
    return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0)
    r.output.append(buf.data(), n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

} // namespace

TEST(Cli, VersionPrintsTheVersion) {
  auto r = run("version");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.output.find("troupe 0."), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("CAF 0.17"), std::string::npos) << r.output;
}

TEST(Cli, EverySubcommandHasHelp) {
  for (auto sub : {"node", "dev", "submit", "shell", "migrate", "config check",
                   "version"}) {
    auto r = run(std::string{sub} + " --help");
    EXPECT_EQ(r.status, 0) << sub << ": " << r.output;
    EXPECT_NE(r.output.find("Usage"), std::string::npos) << sub;
  }
}

TEST(Cli, UnknownSubcommandFails) {
  auto r = run("frobnicate");
  EXPECT_NE(r.status, 0);
}
