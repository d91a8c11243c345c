#include "runtime/common/line_spool.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "messages/errc.hpp"

namespace troupe {

namespace {

caf::error io_error(const std::string& what, const std::string& path) {
  return make_error(errc::unavailable,
                    what + " " + path + ": " + std::strerror(errno));
}

/// Writes all of `data` to `fd`, then waits until it is on disk.
caf::error write_synced(int fd, const std::string& data,
                        const std::string& path) {
  std::size_t done = 0;
  while (done < data.size()) {
    auto n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return io_error("writing", path);
    done += static_cast<std::size_t>(n);
  }
  if (::fdatasync(fd) != 0)
    return io_error("syncing", path);
  return caf::none;
}

std::string directory_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash + 1);
}

void sync_directory(const std::string& path) {
  if (int dir = ::open(directory_of(path).c_str(), O_RDONLY | O_CLOEXEC);
      dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

} // namespace

caf::expected<std::unique_ptr<line_spool>>
line_spool::open(const std::string& path) {
  auto lock_path = path + ".lock";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0)
    return io_error("cannot create", lock_path);
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    auto err = errno == EWOULDBLOCK
                   ? make_error(errc::unavailable,
                                path + " is in use by another process (two "
                                       "nodes with one id on one machine?)")
                   : io_error("cannot lock", lock_path);
    ::close(lock_fd);
    return err;
  }
  int fd =
      ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    auto err = io_error("cannot open", path);
    ::close(lock_fd);
    return err;
  }
  sync_directory(path); // a file just made must outlive a power loss too
  return std::unique_ptr<line_spool>{new line_spool(path, fd, lock_fd)};
}

line_spool::~line_spool() {
  ::close(fd_);
  ::close(lock_fd_); // releases the lock
}

std::vector<std::string> line_spool::lines() const {
  std::ifstream in{path_, std::ios::binary};
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line))
    if (!in.eof()) // ended by a newline: complete
      out.push_back(line);
  return out;
}

caf::error line_spool::append(const std::string& line) {
  auto end = ::lseek(fd_, 0, SEEK_END);
  auto err = write_synced(fd_, line + '\n', path_);
  // A line written in part is cut off again, or the next one would be glued
  // to it (if even that fails, lines() reads the two as one bad line).
  if (err && end >= 0 && ::ftruncate(fd_, end) != 0)
    return io_error("cutting a partial line off", path_);
  return err;
}

caf::error line_spool::rewrite(const std::vector<std::string>& keep) {
  auto tmp = path_ + ".new";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return io_error("cannot create", tmp);
  std::string data;
  for (const auto& l : keep)
    data += l + '\n';
  auto err = write_synced(fd, data, tmp);
  if (!err && ::rename(tmp.c_str(), path_.c_str()) != 0)
    err = io_error("cannot replace", path_);
  if (err) {
    ::close(fd);
    return err;
  }
  // The rename itself must reach the disk before the lines it drops are
  // taken for written elsewhere.
  sync_directory(path_);
  // Appends go on in the file just written (its offset is at its end, and
  // only this process writes it): reopening by name could fail and leave
  // the appends in the replaced file.
  ::close(fd_);
  fd_ = fd;
  return caf::none;
}

} // namespace troupe
