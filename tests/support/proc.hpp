#pragma once

// Looking at processes through /proc, as tests that check for leftovers do.

#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <string>
#include <unistd.h>
#include <vector>

namespace troupe::test {

/// The content of a /proc file, empty when its process is gone: a process
/// that exits between readdir and read makes the read fail with ESRCH,
/// which an ifstream turns into an exception.
inline std::string read_proc_file(const std::string& path) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return out;
  char buf[4096];
  for (;;) {
    auto n = ::read(fd, buf, sizeof buf);
    if (n <= 0)
      break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

/// Pids of processes (other than this one) whose command line mentions
/// `marker`.
inline std::vector<int> processes_mentioning(const std::string& marker) {
  std::vector<int> out;
  DIR* d = opendir("/proc");
  if (!d)
    return out;
  while (auto* e = readdir(d)) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0 || pid == getpid())
      continue;
    auto cmd = read_proc_file("/proc/" + std::to_string(pid) + "/cmdline");
    for (auto& c : cmd)
      if (c == '\0')
        c = ' ';
    if (cmd.find(marker) != std::string::npos)
      out.push_back(pid);
  }
  closedir(d);
  return out;
}

} // namespace troupe::test
