// `troupe shell` in interactive mode, driven through a pseudo-terminal
// against the live two-node cluster of shell_fixture.hpp: line editing,
// completion and history.
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <thread>

#include <gtest/gtest.h>

#include "tests/runtime/shell_fixture.hpp"
#include "tests/support/eventually.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

/// Reads from `fd` until `text` appears or `limit` passes; returns all read.
std::string read_until(int fd, const std::string& text,
                       std::chrono::milliseconds limit, std::string& all) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (all.find(text) == std::string::npos &&
         std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0)
      continue;
    char buf[4096];
    auto n = read(fd, buf, sizeof(buf));
    if (n <= 0)
      break;
    all.append(buf, static_cast<std::size_t>(n));
  }
  return all;
}

/// The text a terminal would show, roughly: ANSI escape sequences removed
/// (libedit redraws a completed word with cursor movements).
std::string visible(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\x1b' && i + 1 < s.size() && s[i + 1] == '[') {
      i += 2;
      while (i < s.size() && !(s[i] >= '@' && s[i] <= '~'))
        ++i;
      continue;
    }
    if (s[i] == '\n' || static_cast<unsigned char>(s[i]) >= 0x20)
      out += s[i]; // drops \r and the bell libedit rings on completion
  }
  return out;
}

/// libedit stores history lines with spaces as \040.
std::string unvis(std::string s) {
  for (std::size_t p; (p = s.find("\\040")) != std::string::npos;)
    s.replace(p, 4, " ");
  return s;
}

} // namespace

TEST_F(shell_test, InteractiveModeEditsCompletesAndKeepsHistory) {
  auto history = dir_ + "/history";
  int master = -1;
  pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("TERM", "xterm", 1);
    setenv("TROUPE_SHELL_HISTORY", history.c_str(), 1);
    setenv("TROUPE_NATS_URL", servers_->nats_url().c_str(), 1);
    execl(TROUPE_BINARY, TROUPE_BINARY, "shell", "--no-color",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string all;
  read_until(master, "troupe> ", 20s, all);
  ASSERT_NE(all.find("troupe> "), std::string::npos) << all;
  auto type = [&](const std::string& keys) {
    ASSERT_EQ(write(master, keys.data(), keys.size()),
              static_cast<ssize_t>(keys.size()));
  };
  // Tab completes a command name; the command prints its table.
  type("pipel\t\r");
  read_until(master, "IN FLIGHT", 20s, all);
  EXPECT_NE(visible(all).find("pipelines"), std::string::npos) << all;
  EXPECT_NE(all.find("PIPELINE"), std::string::npos) << all;
  EXPECT_NE(all.find("gated"), std::string::npos) << all;
  // Tab completes a pipeline name after --pipeline.
  all.clear();
  type("jobs --pipeline gat\t\r");
  auto until = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < until &&
         visible(all).find("jobs --pipeline gated") == std::string::npos) {
    std::string more;
    read_until(master, "\n", 200ms, more);
    all += more;
  }
  EXPECT_NE(visible(all).find("jobs --pipeline gated"), std::string::npos)
      << all;
  // Its output (a table, or "no jobs match") ends with the next prompt.
  auto after = [&] {
    auto v = visible(all);
    auto at = v.find("jobs --pipeline gated");
    return at != std::string::npos &&
           v.find("troupe> ", at) != std::string::npos;
  };
  until = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < until && !after()) {
    std::string more;
    read_until(master, "\n", 200ms, more);
    all += more;
  }
  EXPECT_TRUE(after()) << all;
  // An error says what to do and the shell keeps going.
  all.clear();
  type("frobnicate\r");
  read_until(master, "try: help", 20s, all);
  EXPECT_NE(all.find("unknown command 'frobnicate'"), std::string::npos) << all;
  type("quit\r");
  int status = 0;
  test::eventually([&] { return waitpid(pid, &status, WNOHANG) != 0; },
                   std::chrono::milliseconds{10000},
                   std::chrono::milliseconds{100});
  if (waitpid(pid, &status, WNOHANG) == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "shell did not quit";
  }
  close(master);
  auto saved = unvis(read_file(history));
  EXPECT_NE(saved.find("pipelines"), std::string::npos) << saved;
  EXPECT_NE(saved.find("jobs --pipeline gated"), std::string::npos) << saved;
}
