#pragma once

// The fixture of the `troupe shell` tests (shell_test.cpp,
// shell_interactive_test.cpp): a live two-node cluster (real nats-server
// with JetStream, real PostgreSQL) and helpers that drive the real binary
// as an operator or a script would.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "child_process.hpp"
#include "tests/support/test_servers.hpp"

namespace troupe::test {

class shell_test : public ::testing::Test {
public:
  // The shared servers and nodes start in the first test's SetUp, not in
  // SetUpTestSuite: a failure there makes GoogleTest (and CTest) report
  // the tests as skipped instead of failed.
  void SetUp() override;

  /// Starts the servers and the nodes sh-a and sh-b, and waits until each
  /// node sees the other.
  static void setup();

  static void TearDownTestSuite();

  /// The configuration of node `id`, with the pipelines the tests use.
  static std::string config_text(const std::string& id);

  /// Runs `troupe shell --json -c cmds`; returns the exit code and one JSON
  /// document per line of output.
  static std::pair<int, std::vector<nlohmann::json>>
  shell(const std::string& cmds, std::vector<std::string> extra = {});

  /// The one document of a single command that must succeed.
  static nlohmann::json ok(const std::string& cmd);

  static std::string submit(const std::string& pipeline,
                            nlohmann::json payload = {},
                            const std::string& key = "");

  static std::string state_of(const std::string& job_id);

  static bool wait_state(const std::string& job_id, const std::string& state,
                         std::chrono::seconds limit = std::chrono::seconds{30});

  static std::int64_t count(const std::string& sql);

  static test_servers* servers_;
  static inline bool set_up_ = false;
  static inline bool setup_failed_ = false;
  static std::string dir_;
  static std::vector<std::unique_ptr<child_process>> nodes_;
};

} // namespace troupe::test
