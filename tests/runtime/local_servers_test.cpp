// Local servers as `troupe dev` and the tests start them, and `troupe dev`
// itself as an operator runs it.
#include <csignal>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#define PQXX_HAVE_OPTIONAL
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "child_process.hpp"
#include "messages/errc.hpp"
#include "runtime/exec/process.hpp"
#include "runtime/nats/nats_client.hpp"
#include "tests/support/proc.hpp"
#include "tests/support/test_servers.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

/// True if `pid` runs (a zombie waiting for a parent that does not reap it
/// counts as gone: it holds no port, file or memory).
bool alive(pid_t pid) {
  auto stat = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty())
    return false;
  auto close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() ||
         stat[close + 2] != 'Z';
}

std::string temp_dir() {
  char tmpl[] = "/tmp/troupe-dev-test-XXXXXX";
  return mkdtemp(tmpl);
}

} // namespace

TEST(LocalServers, StartServeAndStopWithoutLeftovers) {
  auto dir = temp_dir();
  int np = free_port(), pp = free_port();
  pid_t nats_pid, pg_pid;
  {
    local_nats nats;
    ASSERT_FALSE(nats.start(dir, np));
    local_postgres pg;
    ASSERT_FALSE(pg.start(dir, pp));
    nats_pid = nats.pid();
    pg_pid = pg.pid();
    EXPECT_GT(pg_pid, 0);
    nats_connect_options o;
    o.urls = nats.url();
    auto c = nats_client::connect(o);
    ASSERT_TRUE(c) << describe(c.error());
    jsAccountInfo* ai = nullptr;
    jsErrCode jerr;
    EXPECT_EQ(js_GetAccountInfo(&ai, (*c)->js(), nullptr, &jerr), NATS_OK)
        << "JetStream must be enabled";
    if (ai)
      jsAccountInfo_Destroy(ai);
    pqxx::connection conn{pg.url()};
    pqxx::work w{conn};
    EXPECT_EQ(w.exec1("select 1")[0].as<int>(), 1);
    w.exec("create table kept(x int)");
    w.exec("insert into kept values (42)");
    w.commit();
  }
  EXPECT_FALSE(alive(nats_pid)) << "nats-server still running";
  EXPECT_FALSE(alive(pg_pid)) << "postgres still running";
  {
    // Same directory again: the data is reused.
    local_postgres pg;
    ASSERT_FALSE(pg.start(dir, pp));
    pqxx::connection conn{pg.url()};
    pqxx::nontransaction n{conn};
    EXPECT_EQ(n.exec1("select x from kept")[0].as<int>(), 42);
  }
  EXPECT_TRUE(processes_mentioning(dir).empty());
  run_command({"rm", "-rf", dir}, 60s);
}

TEST(LocalServers, APortInUseIsAClearError) {
  auto dir = temp_dir();
  int np = free_port();
  local_nats first;
  ASSERT_FALSE(first.start(dir + "/a", np));
  local_nats second;
  auto err = second.start(dir + "/b", np);
  ASSERT_TRUE(err);
  EXPECT_NE(describe(err).find("in use"), std::string::npos);
  EXPECT_NE(describe(err).find("--nats-port"), std::string::npos);
  first.stop();
  run_command({"rm", "-rf", dir}, 60s);
}

TEST(DevCommand, StartsBothServersAndStopsEverythingOnSigint) {
  auto dir = temp_dir();
  int np = free_port(), pp = free_port();
  child_process dev{{TROUPE_BINARY, "dev", "--dir", dir, "--nats-port",
                     std::to_string(np), "--pg-port", std::to_string(pp)},
                    dir + ".log"};
  ASSERT_TRUE(dev.wait_for_output("node dev: ready", 120s)) << dev.output();
  EXPECT_TRUE(port_open(np));
  EXPECT_TRUE(port_open(pp));
  EXPECT_FALSE(processes_mentioning(dir).empty());
  dev.signal(SIGINT);
  EXPECT_EQ(dev.wait(60s), 0) << dev.output();
  EXPECT_NE(dev.output().find("troupe dev: stopped"), std::string::npos);
  EXPECT_TRUE(processes_mentioning(dir).empty())
      << "orphaned processes left behind";
  EXPECT_FALSE(port_open(np));
  EXPECT_FALSE(port_open(pp));
  // A failed run must not leave its servers behind for the next tests.
  for (int pid : processes_mentioning(dir))
    ::kill(pid, SIGKILL);
  run_command({"rm", "-rf", dir, dir + ".log"}, 60s);
}

// An operator who finds a node dead must see where it died: a fatal signal
// prints a backtrace and the process still dies of that signal.
TEST(CrashReport, AFatalSignalLeavesABacktraceAndTheSameExitStatus) {
  auto dir = temp_dir();
  // A NATS port nobody listens on keeps the node retrying its start-up.
  child_process node{{TROUPE_BINARY, "node", "--config",
                      std::string{TROUPE_SOURCE_DIR} + "/config/demo.toml"},
                     dir + ".log",
                     {"TROUPE_NATS_URL=nats://127.0.0.1:1"}};
  ASSERT_TRUE(node.wait_for_output("NATS not ready yet", 60s)) << node.output();
  node.signal(SIGSEGV);
  EXPECT_EQ(node.wait(30s), 128 + SIGSEGV) << node.output();
  auto out = node.output();
  EXPECT_NE(out.find("troupe: fatal signal 11 (SEGV)"), std::string::npos)
      << out;
  EXPECT_NE(out.find("sent by pid"), std::string::npos) << out;
  EXPECT_NE(out.find("run_node"), std::string::npos)
      << "the backtrace names the functions: " << out;
  run_command({"rm", "-rf", dir, dir + ".log"}, 60s);
}
