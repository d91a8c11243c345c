#include "chaos_cluster.hpp"

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <unistd.h>

#include "messages/errc.hpp"
#include "tests/support/test_servers.hpp"

using namespace std::chrono_literals;

namespace troupe::chaos {

namespace {

constexpr const char* faketime_lib =
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

std::string loopback_url(const char* scheme, int port) {
  return std::string{scheme} + "://127.0.0.1:" + std::to_string(port);
}

} // namespace

chaos_cluster::chaos_cluster(std::string dir, std::string config_body)
    : dir_(std::move(dir)), body_(std::move(config_body)) {
  for (int i = 0; i < nats_count; ++i) {
    ports_[i] = test::free_port();
    cports_[i] = test::free_port();
    routes_ += (i ? "," : "") + loopback_url("nats", cports_[i]);
  }
  pg_port_ = test::free_port();
  // TROUPE_CHAOS_FAKETIME=0 runs every node on the real clock (no clock
  // jumps), to tell libfaketime's effects from the node's own.
  const char* ft = std::getenv("TROUPE_CHAOS_FAKETIME");
  faketime_ =
      access(faketime_lib, R_OK) == 0 && !(ft && std::string{ft} == "0");
}

chaos_cluster::~chaos_cluster() {
  for (auto& n : nodes_)
    if (n && n->running())
      n->signal(SIGKILL);
  nodes_ = {};
  proxies_ = {};
}

std::string chaos_cluster::nats_urls() const {
  std::string out;
  for (int i = 0; i < nats_count; ++i)
    out += (i ? "," : "") + loopback_url("nats", ports_[i]);
  return out;
}

std::string chaos_cluster::start() {
  for (int i = 0; i < nats_count; ++i)
    if (auto err = start_nats(i); !err.empty())
      return err;
  if (auto err = start_pg(); !err.empty())
    return err;
  for (int n = 0; n < node_count; ++n) {
    for (int s = 0; s < nats_count; ++s)
      proxies_[n][s] = std::make_unique<tcp_proxy>(ports_[s]);
    proxies_[n][nats_count] = std::make_unique<tcp_proxy>(pg_port_);
  }
  jump_clock(0);
  for (int i = 0; i < node_count; ++i)
    restart_node(i);
  for (int i = 0; i < node_count; ++i)
    if (!nodes_[i]->wait_for_output("ready", 120s))
      return node_id(i) + " did not start:\n" + nodes_[i]->output();
  return "";
}

std::string chaos_cluster::write_node_config(int i) {
  std::string nats;
  for (int s = 0; s < nats_count; ++s)
    nats += (s ? "," : "") + loopback_url("nats", proxies_[i][s]->port());
  auto path = dir_ + "/" + node_id(i) + ".toml";
  test::write_file(path, R"([node]
http = "127.0.0.1:0"
startup_timeout = "120s"
exec_inherit_env = ["CHAOS_*"]
spool_dir = ")" + dir_ + R"(/spool"
[nats]
url = ")" + nats + R"("
replicas = 3
ack_wait = "5s"
duplicate_window = "10s"
stranded_sweep = "5s"
[postgres]
url = "postgresql://postgres@127.0.0.1:)" +
                             std::to_string(proxies_[i][nats_count]->port()) +
                             R"(/troupe"
[cluster]
heartbeat_interval = "250ms"
failure_timeout = "2s"
)" + body_);
  return path;
}

std::vector<std::string> chaos_cluster::node_env(int i) const {
  std::vector<std::string> env{"CHAOS_NODE=" + node_id(i), "CHAOS_DIR=" + dir_};
  if (i == node_count - 1 && faketime_) {
    // Only the wall clock jumps (as an NTP step does): steady clocks, which
    // CAF's timers and troupe's timeouts use, keep their pace.
    env.push_back(std::string{"LD_PRELOAD="} + faketime_lib);
    env.push_back("FAKETIME_TIMESTAMP_FILE=" + dir_ + "/clock");
    env.push_back("FAKETIME_CACHE_DURATION=1");
    env.push_back("DONT_FAKE_MONOTONIC=1");
  }
  return env;
}

bool chaos_cluster::node_running(int i) {
  return nodes_[i] && nodes_[i]->running();
}

namespace {

/// The line of a node that gave up starting (exit 2: NATS or PostgreSQL
/// did not answer within node.startup_timeout), "" if its log's end has
/// none. The package's unit restarts such a node (Restart=on-failure,
/// scripts/packaging/troupe@.service), as this harness does.
std::string gave_up_starting(const std::string& log) {
  constexpr std::size_t tail = 4096;
  static const std::string mark = "cannot start: ";
  auto from = log.size() > tail ? log.size() - tail : 0;
  auto at = log.find(mark, from);
  if (at == std::string::npos)
    return "";
  auto line = log.substr(at, log.find('\n', at) - at);
  // Other errors keep their code ("invalid_config: ...", node.cpp): only
  // an unreachable dependency is excused.
  auto word =
      line.find_first_not_of("abcdefghijklmnopqrstuvwxyz_", mark.size());
  bool coded = word != std::string::npos && word > mark.size() &&
               line.compare(word, 2, ": ") == 0;
  return coded ? "" : line;
}

} // namespace

void chaos_cluster::record_exit(int i, int code) {
  bool expected =
      !why_[i].empty() || (kill_allowed_[i] && code == 128 + SIGKILL);
  auto why = why_[i].empty() && expected ? "killed by its own stage" : why_[i];
  if (!expected && code == 2) {
    auto line = gave_up_starting(nodes_[i]->output());
    expected = !line.empty();
    if (expected)
      why = "gave up starting (" + line +
            ") and was started again, as its "
            "systemd unit would";
  }
  exits_.push_back({node_id(i), code, expected, why});
  why_[i].clear();
}

void chaos_cluster::signal_node(int i, int sig, const std::string& why) {
  if (!node_running(i))
    return;
  if (sig == SIGKILL || sig == SIGTERM)
    why_[i] = why;
  nodes_[i]->signal(sig);
}

namespace {

/// The node under test: this build's, or another build's
/// (TROUPE_CHAOS_NODE, e.g. build-asan/troupe to name a crash's cause).
std::string node_binary() {
  const char* other = std::getenv("TROUPE_CHAOS_NODE");
  return other && *other ? other : TROUPE_BINARY;
}

/// The node under libfaketime: the same code on glibc's malloc (jemalloc
/// and libfaketime clash at start-up: runtime/CMakeLists.txt), unless
/// TROUPE_CHAOS_FAKETIME_NODE or TROUPE_CHAOS_NODE names another build.
std::string faketime_node_binary() {
  const char* own = std::getenv("TROUPE_CHAOS_FAKETIME_NODE");
  if (own && *own)
    return own;
  const char* other = std::getenv("TROUPE_CHAOS_NODE");
  return other && *other ? other : TROUPE_GLIBC_BINARY;
}

} // namespace

void chaos_cluster::restart_node(int i) {
  if (nodes_[i]) {
    // A node the harness just killed may not have died yet.
    if (!why_[i].empty())
      nodes_[i]->wait(10s);
    if (nodes_[i]->running())
      return;
    record_exit(i, nodes_[i]->wait(0ms));
  }
  auto config = write_node_config(i);
  nodes_[i] = std::make_unique<test::child_process>(
      std::vector<std::string>{
          i == node_count - 1 && faketime_ ? faketime_node_binary()
                                           : node_binary(),
          "node", "--config", config, "--node-id", node_id(i)},
      dir_ + "/" + node_id(i) + ".log", node_env(i));
}

void chaos_cluster::reap_unexpected() {
  for (int i = 0; i < node_count; ++i)
    if (nodes_[i] && !nodes_[i]->running() && why_[i].empty())
      restart_node(i);
}

void chaos_cluster::stop_nodes(std::chrono::seconds grace) {
  for (int i = 0; i < node_count; ++i) {
    signal_node(i, SIGCONT, "");
    signal_node(i, SIGTERM, "stopped at the end");
  }
  for (int i = 0; i < node_count; ++i)
    if (nodes_[i]) {
      auto code = nodes_[i]->wait(grace);
      if (code == -1) {
        why_[i].clear();
        nodes_[i]->signal(SIGKILL);
        code = nodes_[i]->wait(10s);
        exits_.push_back(
            {node_id(i), code, false, "did not exit within the drain grace"});
        continue;
      }
      exits_.push_back({node_id(i), code, code == 0, "stopped at the end"});
      why_[i].clear();
    }
  nodes_ = {};
}

void chaos_cluster::kill_nats(int i) {
  if (nats_[i].pid() > 0)
    ::kill(nats_[i].pid(), SIGKILL);
  nats_[i].stop();
}

void chaos_cluster::pause_nats(int i, bool paused) {
  if (nats_[i].pid() > 0)
    ::kill(nats_[i].pid(), paused ? SIGSTOP : SIGCONT);
}

void chaos_cluster::stop_nats(int i) {
  nats_[i].stop();
}

std::string chaos_cluster::start_nats(int i) {
  if (nats_[i].pid() > 0)
    return "";
  auto err =
      nats_[i].start_clustered(dir_, ports_[i], "s" + std::to_string(i + 1),
                               cports_[i], routes_, {"--no_advertise"});
  return err ? describe(err) : "";
}

void chaos_cluster::kill_pg() {
  auto pid = pg_.pid();
  if (pid > 0) {
    ::kill(pid, SIGQUIT);
    for (int t = 0; t < 500 && ::kill(pid, 0) == 0; ++t)
      std::this_thread::sleep_for(20ms);
  }
}

void chaos_cluster::stop_pg() {
  pg_.stop();
}

std::string chaos_cluster::start_pg() {
  auto err = pg_.start(dir_, pg_port_);
  return err ? describe(err) : "";
}

void chaos_cluster::cut(int i, bool from_nats, bool from_pg, bool cut) {
  for (int s = 0; s < nats_count; ++s)
    if (from_nats)
      proxies_[i][s]->partition(cut);
  if (from_pg)
    proxies_[i][nats_count]->partition(cut);
}

void chaos_cluster::slow_nats(int i, std::size_t bytes_per_s) {
  for (int s = 0; s < nats_count; ++s)
    proxies_[i][s]->throttle(bytes_per_s);
}

bool chaos_cluster::jump_clock(int seconds) {
  if (!faketime_)
    return false;
  test::write_file(dir_ + "/clock",
                   (seconds < 0 ? "" : "+") + std::to_string(seconds) + "\n");
  return true;
}

} // namespace troupe::chaos
