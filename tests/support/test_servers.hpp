#pragma once

// Real servers for integration tests: a nats-server with JetStream and a
// PostgreSQL 15 cluster on free loopback ports, with their data in a fresh
// temporary directory that is removed afterwards. Uses the same code as
// `troupe dev`, so the tests exercise it too.

#include <memory>
#include <string>

#include "runtime/cli/local_servers.hpp"

namespace troupe::test {

/// Returns a port on 127.0.0.1 that was free a moment ago.
int free_port();

class test_servers {
public:
  /// Starts both servers; aborts the test program with a message if they
  /// cannot start (nothing meaningful can be tested then).
  test_servers();
  ~test_servers();

  const std::string& dir() const { return dir_; }
  std::string nats_url() const { return nats_.url(); }
  std::string pg_url() const { return pg_.url(); }
  int nats_port() const { return nats_port_; }
  int pg_port() const { return pg_port_; }

  local_nats& nats() { return nats_; }
  local_postgres& pg() { return pg_; }

private:
  std::string dir_;
  int nats_port_ = 0;
  int pg_port_ = 0;
  local_nats nats_;
  local_postgres pg_;
};

} // namespace troupe::test
