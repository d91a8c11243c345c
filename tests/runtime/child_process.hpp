#pragma once

// A child process for integration tests that drive the real `troupe`
// binary the way an operator or a publisher would.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <sys/types.h>

namespace troupe::test {

class child_process {
public:
  /// Starts `argv` with stdout and stderr appended to `log_file`, and
  /// `env` (NAME=value) added to the environment.
  child_process(std::vector<std::string> argv, std::string log_file,
                std::vector<std::string> env = {});
  ~child_process();

  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const noexcept { return pid_; }
  bool running();

  /// Sends a signal.
  void signal(int sig);

  /// Waits up to `timeout` for exit; returns the exit code, 128+signal, or
  /// -1 on timeout.
  int wait(std::chrono::milliseconds timeout);

  /// The log written so far.
  std::string output() const;

  /// Waits until the log contains `text` (true) or `timeout` passes.
  bool wait_for_output(const std::string& text,
                       std::chrono::milliseconds timeout);

private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string log_file_;
};

/// The HTTP port a troupe node logged (`http on 127.0.0.1:<port>`), or 0.
int http_port_of(const child_process& node);

/// Reads a whole file ("" if missing).
std::string read_file(const std::string& path);

/// Writes a file.
void write_file(const std::string& path, const std::string& text);

#ifdef TROUPE_BINARY
/// Starts `troupe node --config <config>` (with `--node-id <id>` unless
/// empty), logging to `log`, and waits until it says it is ready.
/// `binary`: TROUPE_GLIBC_BINARY for a node under libfaketime (jemalloc and
/// libfaketime clash at start-up: runtime/CMakeLists.txt).
inline std::unique_ptr<child_process>
start_troupe_node(const std::string& config, const std::string& log,
                  const std::string& id = {}, std::vector<std::string> env = {},
                  const std::string& binary = TROUPE_BINARY) {
  std::vector<std::string> argv{binary, "node", "--config", config};
  if (!id.empty()) {
    argv.push_back("--node-id");
    argv.push_back(id);
  }
  auto node = std::make_unique<child_process>(argv, log, std::move(env));
  EXPECT_TRUE(node->wait_for_output("ready", std::chrono::seconds{60}))
      << node->output();
  return node;
}
#endif

} // namespace troupe::test
