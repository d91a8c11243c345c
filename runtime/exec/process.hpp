#pragma once

// Starting and stopping child processes (servers for `troupe dev`, tools
// like pg_ctl). Children get a clean signal mask and their own process group.

#include <chrono>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <sys/types.h>

namespace troupe {

/// Starts `argv` in the background with stdout/stderr appended to
/// `log_file` ("" = /dev/null). Returns the pid.
caf::expected<pid_t> spawn_process(const std::vector<std::string>& argv,
                                   const std::string& log_file);

/// Waits up to `timeout` for `pid` to exit; returns its exit code (128+sig
/// if killed) or -1 on timeout.
int wait_process(pid_t pid, std::chrono::milliseconds timeout);

/// SIGTERM, then SIGKILL after `grace`; always reaps.
void stop_process(pid_t pid, std::chrono::milliseconds grace);

/// Output and status of a finished command.
struct command_result {
  int exit_code = -1;
  std::string output;
};

/// Runs a command to completion (bounded by `timeout`), capturing stdout
/// and stderr together.
command_result run_command(const std::vector<std::string>& argv,
                           std::chrono::milliseconds timeout);

/// True if something accepts TCP connections on 127.0.0.1:port.
bool port_open(int port);

/// True if 127.0.0.1:port can be bound right now.
bool port_free(int port);

/// Finds an executable on PATH (or returns "" if missing).
std::string find_program(const std::string& name);

} // namespace troupe
