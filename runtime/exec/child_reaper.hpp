#pragma once

// The children of a node: those it waits for by pid (exec attempts, the
// servers of `troupe dev`, tools like pg_ctl) and the orphans it adopts.
//
// A node running exec stages is a child subreaper (PR_SET_CHILD_SUBREAPER):
// a stage program's descendants that outlive their parent (a daemon, a
// `setsid cmd &`) are re-parented to the node instead of init, and the node
// must reap them once they exit, or they stay zombies. (They would anyway
// when the node is PID 1 of a container.)
//
// Reaping with waitpid(-1) would steal the exit status of children that
// other threads wait for by pid. So every child started to be waited for is
// *owned*: started under a child_spawn_guard and registered, and the reaper
// reaps only exited children that nobody owns, each by its pid. It lists
// them from /proc/self/task/*/children (or /proc/*/stat where the kernel
// lacks that file) every second; SIGCHLD handlers are avoided on purpose,
// since signals are routed to one watcher thread (runtime/common/shutdown.hpp).

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include <sys/types.h>

namespace troupe {

/// Held while starting a child that the caller will wait for by pid, until
/// own(): the orphan reaper waits meanwhile, so that it never reaps (and
/// steals the exit status of) a child that exits at once. Many starters may
/// hold one at a time.
class child_spawn_guard {
public:
  child_spawn_guard();

  child_spawn_guard(const child_spawn_guard&) = delete;
  child_spawn_guard& operator=(const child_spawn_guard&) = delete;

  /// Marks `pid` as waited for by its starter, until release_child(pid).
  void own(pid_t pid);

private:
  std::shared_lock<std::shared_mutex> lock_;
};

/// Ends the ownership of `pid` once its starter has reaped it.
void release_child(pid_t pid);

/// Reaps the children that have exited and that nobody owns; returns how
/// many it reaped.
std::size_t reap_orphans();

/// Makes the process a child subreaper and reaps orphans periodically on
/// its own thread, for as long as someone holds it.
class orphan_reaper {
public:
  /// The process's reaper, started on first use. When the last holder
  /// drops it, its thread stops, a last reap runs and the process stops
  /// being a subreaper.
  static std::shared_ptr<orphan_reaper> shared();

  ~orphan_reaper();

  orphan_reaper(const orphan_reaper&) = delete;
  orphan_reaper& operator=(const orphan_reaper&) = delete;

  /// Orphans reaped so far.
  std::size_t reaped() const;

private:
  explicit orphan_reaper(std::chrono::milliseconds interval);
  void run();

  std::chrono::milliseconds interval_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::size_t reaped_ = 0;
  std::thread thread_;
};

} // namespace troupe
