#pragma once

// A file of lines on local disk, each one on disk (fdatasync) before
// append() returns: what a node must not lose when it is killed and cannot
// put anywhere else yet (the submit API's log while PostgreSQL is away,
// runtime/pg/submission_log.hpp). One process at a time: open() takes an
// exclusive lock on `<path>.lock`, held until the spool goes.
//
// Blocking: call from worker threads, never from a CAF scheduler thread.

#include <memory>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

namespace troupe {

class line_spool {
public:
  /// Opens (creates) the spool at `path`; its directory must exist.
  /// Errors: unavailable (cannot create, read or lock it; another process
  /// holds it), naming the path.
  static caf::expected<std::unique_ptr<line_spool>>
  open(const std::string& path);

  ~line_spool();
  line_spool(const line_spool&) = delete;
  line_spool& operator=(const line_spool&) = delete;

  /// The complete lines on disk, oldest first. A last line cut short by a
  /// crash (no newline) is left out: its append() never returned.
  std::vector<std::string> lines() const;

  /// Adds `line` (no newline in it) and waits until it is on disk.
  caf::error append(const std::string& line);

  /// Replaces every line with `keep`, atomically (a new file renamed over
  /// the old one).
  caf::error rewrite(const std::vector<std::string>& keep);

  const std::string& path() const { return path_; }

private:
  line_spool(std::string path, int fd, int lock_fd)
      : path_(std::move(path)), fd_(fd), lock_fd_(lock_fd) {}

  std::string path_;
  int fd_ = -1;      ///< the spool, opened for appending
  int lock_fd_ = -1; ///< `<path>.lock`, flock'ed
};

} // namespace troupe
