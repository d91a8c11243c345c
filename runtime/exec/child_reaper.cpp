#include "runtime/exec/child_reaper.hpp"

#include <cerrno>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace troupe {

namespace {

/// Who may reap which child.
struct child_table {
  /// Shared by starters between start and own(); exclusive while reaping.
  std::shared_mutex spawning;
  std::mutex mtx;
  std::unordered_set<pid_t> owned;
};

child_table& table() {
  // Never destroyed: pool threads may still release children while static
  // destructors run at exit.
  static auto* t = new child_table;
  return *t;
}

bool is_number(const char* s) {
  if (!*s)
    return false;
  for (; *s; ++s)
    if (*s < '0' || *s > '9')
      return false;
  return true;
}

/// Children per /proc/self/task/<tid>/children (every thread: an orphan is
/// re-parented to one thread of the subreaper). False if the kernel lacks
/// those files (CONFIG_PROC_CHILDREN).
bool children_from_tasks(std::vector<pid_t>& out) {
  DIR* d = opendir("/proc/self/task");
  if (!d)
    return false;
  bool supported = true;
  while (auto* e = readdir(d)) {
    if (!is_number(e->d_name))
      continue;
    std::ifstream in{std::string{"/proc/self/task/"} + e->d_name + "/children"};
    if (!in) {
      // A thread that just ended has no directory left; a kernel without
      // the file has none for the thread listing itself either.
      if (access(("/proc/self/task/" + std::string{e->d_name}).c_str(), F_OK) ==
          0)
        supported = false;
      continue;
    }
    pid_t pid;
    while (in >> pid)
      out.push_back(pid);
  }
  closedir(d);
  return supported;
}

/// Children per /proc/<pid>/stat (parent field), for every process.
void children_from_stat(std::vector<pid_t>& out) {
  DIR* d = opendir("/proc");
  if (!d)
    return;
  auto me = getpid();
  while (auto* e = readdir(d)) {
    if (!is_number(e->d_name))
      continue;
    std::ifstream in{std::string{"/proc/"} + e->d_name + "/stat"};
    std::string line;
    if (!std::getline(in, line))
      continue;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    auto close = line.rfind(')');
    if (close == std::string::npos)
      continue;
    std::istringstream rest{line.substr(close + 1)};
    std::string state;
    pid_t ppid = 0;
    if (rest >> state >> ppid && ppid == me)
      out.push_back(static_cast<pid_t>(std::atoi(e->d_name)));
  }
  closedir(d);
}

/// The process's reaper, if one is alive (orphan_reaper::shared).
struct reaper_slot {
  std::mutex mtx;
  std::weak_ptr<orphan_reaper> current;
};

reaper_slot& slot() {
  static auto* s = new reaper_slot;
  return *s;
}

std::vector<pid_t> children_of_this_process() {
  std::vector<pid_t> out;
  if (!children_from_tasks(out)) {
    out.clear();
    children_from_stat(out);
  }
  return out;
}

} // namespace

child_spawn_guard::child_spawn_guard() : lock_(table().spawning) {}

void child_spawn_guard::own(pid_t pid) {
  if (pid <= 0)
    return;
  auto& t = table();
  std::lock_guard<std::mutex> guard{t.mtx};
  t.owned.insert(pid);
}

void release_child(pid_t pid) {
  auto& t = table();
  std::lock_guard<std::mutex> guard{t.mtx};
  t.owned.erase(pid);
}

std::size_t reap_orphans() {
  auto& t = table();
  // Exclusive: no child can be between its start and own() while we look.
  std::unique_lock<std::shared_mutex> hold{t.spawning};
  std::size_t n = 0;
  for (auto pid : children_of_this_process()) {
    {
      std::lock_guard<std::mutex> guard{t.mtx};
      if (t.owned.count(pid))
        continue;
    }
    // By pid and WNOHANG: a running orphan is left alone (it is not ours
    // to kill); an exited one is reaped.
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid)
      ++n;
  }
  return n;
}

std::shared_ptr<orphan_reaper> orphan_reaper::shared() {
  auto& s = slot();
  std::lock_guard<std::mutex> guard{s.mtx};
  if (auto r = s.current.lock())
    return r;
  std::shared_ptr<orphan_reaper> r{
      new orphan_reaper(std::chrono::milliseconds{1000})};
  s.current = r;
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  return r;
}

orphan_reaper::orphan_reaper(std::chrono::milliseconds interval)
    : interval_(interval) {
  thread_ = std::thread{[this] { run(); }};
}

orphan_reaper::~orphan_reaper() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  {
    // Unless a new reaper took over meanwhile.
    auto& s = slot();
    std::lock_guard<std::mutex> guard{s.mtx};
    if (s.current.expired())
      prctl(PR_SET_CHILD_SUBREAPER, 0);
  }
  reap_orphans();
}

std::size_t orphan_reaper::reaped() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return reaped_;
}

void orphan_reaper::run() {
  std::unique_lock<std::mutex> lock{mtx_};
  while (!cv_.wait_for(lock, interval_, [this] { return stopping_; })) {
    lock.unlock();
    auto n = reap_orphans();
    lock.lock();
    reaped_ += n;
  }
}

} // namespace troupe
