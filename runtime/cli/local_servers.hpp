#pragma once

// Throwaway servers on 127.0.0.1 for `troupe dev` and the integration tests:
// a nats-server with JetStream and a PostgreSQL 15 cluster, with all data
// under a directory of the caller's choosing. Starting again on the same
// directory reuses the data. Each object stops what it started (and only
// that: by pid, never by name).

#include <string>
#include <vector>

#include <caf/error.hpp>
#include <sys/types.h>

namespace troupe {

class local_nats {
public:
  local_nats() = default;
  ~local_nats();
  local_nats(const local_nats&) = delete;
  local_nats& operator=(const local_nats&) = delete;

  /// Starts `nats-server -js` on 127.0.0.1:port with data in dir/nats.
  caf::error start(const std::string& dir, int port);

  /// Starts one server of a JetStream cluster named `troupe`: server name
  /// `name`, routes between the servers on `cluster_port`s, data in
  /// dir/nats-<name>. `routes` lists every server's cluster URL; `extra`
  /// adds arguments (the chaos harness passes `--no_advertise`, so that
  /// clients stay behind its proxies).
  caf::error start_clustered(const std::string& dir, int port,
                             const std::string& name, int cluster_port,
                             const std::string& routes,
                             std::vector<std::string> extra = {});

  /// Stops the server (SIGTERM, then SIGKILL after 10 s). Idempotent.
  void stop();

  std::string url() const;
  pid_t pid() const noexcept { return pid_; }

private:
  caf::error launch(std::vector<std::string> extra_args);

  pid_t pid_ = -1;
  int port_ = 0;
  std::string dir_;
};

class local_postgres {
public:
  local_postgres() = default;
  ~local_postgres();
  local_postgres(const local_postgres&) = delete;
  local_postgres& operator=(const local_postgres&) = delete;

  /// Starts PostgreSQL 15 on 127.0.0.1:port with its cluster in dir/pg
  /// (initialised on first use) and ensures database `troupe` exists.
  caf::error start(const std::string& dir, int port);

  /// Stops the cluster (`pg_ctl stop -m fast`). Idempotent.
  void stop();

  std::string url() const;
  /// The postmaster's pid (read from postmaster.pid), -1 if unknown.
  pid_t pid() const;

private:
  bool started_ = false;
  int port_ = 0;
  std::string dir_;
};

/// Directory of PostgreSQL 15's server binaries.
std::string pg_bin_dir();

} // namespace troupe
