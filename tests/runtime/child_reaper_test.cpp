// The orphan reaper reaps exited children nobody waits for, and never the
// children that their starters wait for by pid.
#include "runtime/exec/child_reaper.hpp"

#include <atomic>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/exec/process.hpp"
#include "tests/support/eventually.hpp"

using namespace troupe;
using namespace std::chrono_literals;

namespace {

/// The state letter of a process (R, S, Z, ...), or 0 if it is gone.
char state_of(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string line;
  if (!std::getline(in, line))
    return 0;
  auto close = line.rfind(')');
  return close + 2 < line.size() ? line[close + 2] : 0;
}

} // namespace

TEST(ChildReaper, NeverReapsAChildItsStarterWaitsFor) {
  // A reaper looking all the time: without ownership it would reap some of
  // these and run_command would see ECHILD instead of exit 3.
  std::atomic<bool> stop{false};
  std::thread reaper{[&] {
    while (!stop)
      reap_orphans();
  }};
  for (int i = 0; i < 50; ++i)
    ASSERT_EQ(run_command({"sh", "-c", "exit 3"}, 10s).exit_code, 3) << i;
  stop = true;
  reaper.join();
}

TEST(ChildReaper, ReapsAnExitedChildNobodyOwns) {
  pid_t pid = fork();
  if (pid == 0)
    _exit(0);
  ASSERT_GT(pid, 0);
  test::eventually([&] { return state_of(pid) == 'Z'; },
                   std::chrono::milliseconds{5000},
                   std::chrono::milliseconds{10});
  ASSERT_EQ(state_of(pid), 'Z');
  EXPECT_GE(reap_orphans(), 1u);
  EXPECT_EQ(state_of(pid), 0) << "the zombie is still there";
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, WNOHANG), -1);
}

TEST(ChildReaper, LeavesARunningOrphanAlone) {
  pid_t pid = fork();
  if (pid == 0) {
    pause();
    _exit(0);
  }
  ASSERT_GT(pid, 0);
  reap_orphans();
  EXPECT_EQ(kill(pid, 0), 0) << "a running child was disturbed";
  kill(pid, SIGKILL);
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status));
}

TEST(ChildReaper, TheNodeIsASubreaperWhileItHoldsTheReaper) {
  auto reaper = orphan_reaper::shared();
  EXPECT_EQ(reaper, orphan_reaper::shared()); // one per process
  int on = 0;
  ASSERT_EQ(prctl(PR_GET_CHILD_SUBREAPER, &on), 0);
  EXPECT_EQ(on, 1);
  reaper.reset();
  ASSERT_EQ(prctl(PR_GET_CHILD_SUBREAPER, &on), 0);
  EXPECT_EQ(on, 0);
}
