#pragma once

// The cluster a chaos run breaks: three nats-servers (one JetStream cluster,
// replicas 3), one PostgreSQL, three troupe nodes. Every node reaches every
// server through a proxy of its own (tcp_proxy), so a partition can cut one
// node from one system. Node n3 runs under libfaketime when it is
// installed, so its wall clock can jump. Every node keeps its log across
// restarts (appended, one file per node) and every exit is recorded.

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "runtime/cli/local_servers.hpp"
#include "tcp_proxy.hpp"
#include "tests/runtime/child_process.hpp"

namespace troupe::chaos {

constexpr int node_count = 3;
constexpr int nats_count = 3;

/// How a node's process ended, as the harness saw it.
struct node_exit {
  std::string node;
  int code = 0; ///< exit code, or 128 + signal
  bool expected = false;
  std::string why; ///< what the harness did to it, or "" when nothing
};

class chaos_cluster {
public:
  /// Starts everything under `dir`; `config_body` is the part of every
  /// node's configuration after [node]/[nats]/[postgres]/[cluster].
  chaos_cluster(std::string dir, std::string config_body);
  ~chaos_cluster();

  /// Starts servers and nodes; "" on success, else what failed.
  std::string start();

  const std::string& dir() const { return dir_; }
  /// The servers' own addresses (for the harness's client, not the nodes).
  std::string nats_urls() const;
  std::string pg_url() const { return pg_.url(); }

  // -- nodes --
  std::string node_id(int i) const { return "n" + std::to_string(i + 1); }
  bool node_running(int i);
  int node_pid(int i) const { return nodes_[i] ? nodes_[i]->pid() : -1; }
  /// SIGKILLs (or another signal) node i; the exit is expected.
  void signal_node(int i, int sig, const std::string& why);
  /// Starts node i again if it is not running.
  void restart_node(int i);
  /// Restarts nodes that exited without the harness killing them (a
  /// stage that killed its node on purpose, or a crash: the exit record
  /// says which).
  void reap_unexpected();
  /// Lets node i die by SIGKILL without it counting as unexpected (a stage
  /// kills its node on purpose) until `allow_kill(i, false)`.
  void allow_kill(int i, bool allowed) { kill_allowed_[i] = allowed; }
  /// SIGTERM to every node, waiting for each to drain and exit.
  void stop_nodes(std::chrono::seconds grace);
  const std::vector<node_exit>& exits() const { return exits_; }

  // -- servers --
  void kill_nats(int i);               ///< SIGKILL, no goodbye
  void pause_nats(int i, bool paused); ///< SIGSTOP / SIGCONT
  void stop_nats(int i);               ///< SIGTERM (lame duck)
  std::string start_nats(int i);
  void kill_pg(); ///< immediate shutdown (SIGQUIT to the postmaster)
  void stop_pg(); ///< fast shutdown
  std::string start_pg();

  // -- network --
  /// Cuts (or heals) node i from NATS, PostgreSQL or both.
  void cut(int i, bool from_nats, bool from_pg, bool cut);
  /// Slows node i's links to every nats-server to `bytes_per_s` each way
  /// (0: full speed again).
  void slow_nats(int i, std::size_t bytes_per_s);
  /// Moves node n3's wall clock by `seconds` (0: back to true time).
  bool jump_clock(int seconds);
  bool clock_jumps() const { return faketime_; }

private:
  std::string write_node_config(int i);
  std::vector<std::string> node_env(int i) const;
  void record_exit(int i, int code);

  std::string dir_;
  std::string body_;
  std::array<int, nats_count> ports_{}, cports_{};
  std::string routes_;
  std::array<local_nats, nats_count> nats_;
  local_postgres pg_;
  int pg_port_ = 0;
  std::array<std::unique_ptr<test::child_process>, node_count> nodes_;
  std::array<std::string, node_count> why_;
  std::array<bool, node_count> kill_allowed_{};
  // [node][server]: servers 0..2 are NATS, 3 is PostgreSQL.
  std::array<std::array<std::unique_ptr<tcp_proxy>, nats_count + 1>, node_count>
      proxies_;
  std::vector<node_exit> exits_;
  bool faketime_ = false;
};

} // namespace troupe::chaos
