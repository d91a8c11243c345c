#pragma once

// One attempt of an `exec` stage (runtime/exec/exec_stage.hpp): starts the
// program, writes its stdin, collects stdout and stderr, and turns how it
// ended into a stage_outcome. Runs on a blocking_pool thread.
//
// The attempt ends when the program (the main child) exits, not when its
// stdout and stderr close: a child it left running in the background may
// hold them open for ever. Output already written is drained for a short
// grace, then the program's process group is killed and reading stops. A
// cancel (timeout, cancel, shutdown) wakes the loop at once through an
// eventfd, whoever holds the pipes.

#include <chrono>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

#include "messages/job.hpp"

namespace troupe {

/// What an exec stage runs, checked by its factory.
struct exec_params {
  std::vector<std::string> argv;
  /// The stage's own variables (`env`); they win over inherited ones.
  std::vector<std::pair<std::string, std::string>> env;
  /// Variables taken from the node's environment: names, or prefixes
  /// ending in '*'. TROUPE_* never pass, whatever is listed.
  std::vector<std::string> inherit_env;
  std::string cwd;
  std::set<int> retryable = {75};
  std::size_t max_output = 16 * 1024 * 1024;
  /// How long output is still read after the program exited, while
  /// something else holds its stdout or stderr open.
  std::chrono::milliseconds drain_grace{150};
  /// On cancel or timeout the program's group gets SIGTERM, then SIGKILL
  /// after this long if the program has not exited (`cancel_grace`).
  std::chrono::milliseconds cancel_grace{5000};
};

/// Variables every exec stage inherits from the node: what programs need to
/// find things and format text, nothing that usually holds a secret.
const std::vector<std::string>& default_inherit_env();

/// The environment (NAME=value) of a program: the variables of `node_env`
/// that match `inherit` (never TROUPE_*), then `own` (which wins).
std::vector<std::string>
child_environment(char** node_env, const std::vector<std::string>& inherit,
                  const std::vector<std::pair<std::string, std::string>>& own);

/// Shared by the stage actor's cleanup (cancel) and the thread running the
/// attempt.
class attempt_control {
public:
  attempt_control();
  ~attempt_control();

  attempt_control(const attempt_control&) = delete;
  attempt_control& operator=(const attempt_control&) = delete;

  /// Abandons the attempt: asks the program's process group to stop
  /// (SIGTERM; the attempt's thread sends SIGKILL after the grace) and
  /// wakes the read loop. Thread-safe; later calls do nothing new.
  void cancel();

  bool cancelled() const;

  /// Readable once cancel() was called (-1 if no eventfd could be made:
  /// the read loop then notices within its regular wake-up).
  int wake_fd() const noexcept { return wake_fd_; }

  /// Records the running program (its pid is its process group); kills it
  /// at once if the attempt was cancelled meanwhile.
  void started(pid_t pid);

  /// The program was reaped: its pid is no longer ours to signal.
  void reaped();

private:
  mutable std::mutex mtx_;
  pid_t pid_ = -1;
  bool cancelled_ = false;
  bool reaped_ = false;
  int wake_fd_ = -1;
};

/// Runs one attempt to completion; never throws. `on_spawn` runs once the
/// program has started (not if it could not start). `on_report` gets the
/// lines the program writes on descriptor 3 (progress and heartbeats, one
/// JSON object per line; at most one per 50 ms, the latest wins).
stage_outcome
run_attempt(const exec_params& p, const std::string& input,
            attempt_control& ctl, const std::function<void()>& on_spawn,
            const std::function<void(std::string)>& on_report = {});

} // namespace troupe
