#include "runtime/exec/exec_attempt.hpp"
#include "messages/json_guard.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <spawn.h>
#include <string_view>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "runtime/exec/child_reaper.hpp"
#include "runtime/exec/report_lines.hpp"

extern "C" char** environ;

namespace troupe {

namespace {

/// Deepest nesting accepted in a stage's output (it is nested two levels
/// deeper in the next stage's input).
constexpr int stage_output_depth = 256;

using clock_type = std::chrono::steady_clock;

std::string tail_of(const std::string& s, std::size_t n) {
  return s.size() <= n ? s : "..." + s.substr(s.size() - n);
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])))
    ++i;
  return s.substr(i);
}

void close_fd(int& fd) {
  if (fd >= 0)
    close(fd);
  fd = -1;
}

void set_nonblocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/// A name matches `pattern` exactly, or by prefix if it ends in '*'.
bool matches(std::string_view name, std::string_view pattern) {
  if (!pattern.empty() && pattern.back() == '*') {
    pattern.remove_suffix(1);
    return name.substr(0, pattern.size()) == pattern;
  }
  return name == pattern;
}

/// The parent's ends of a program's stdin, stdout, stderr and report
/// descriptor (3) (-1: closed).
struct child_pipes {
  int in = -1;
  int out = -1;
  int err = -1;
  int report = -1;
};

/// Moves `fd` to a number above 3, so that the child's dup2 onto 3 never
/// meets itself (dup2 of a descriptor onto itself keeps close-on-exec).
bool above_three(int& fd) {
  if (fd > 3)
    return true;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 4);
  close_fd(fd);
  fd = moved;
  return fd >= 0;
}

/// Starts the program on new pipes; a failed outcome if it cannot start.
std::optional<stage_outcome> spawn_program(const exec_params& p,
                                           child_pipes& ends, pid_t& pid) {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, rep[2] = {-1, -1};
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) ||
      pipe2(rep, O_CLOEXEC) || !above_three(rep[1])) {
    auto why = std::string{"pipe: "} + std::strerror(errno);
    for (int* fd :
         {&in[0], &in[1], &out[0], &out[1], &err[0], &err[1], &rep[0], &rep[1]})
      close_fd(*fd);
    return stage_failure("spawn_failed", why, true);
  }
  std::vector<char*> args;
  for (auto& a : p.argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // The environment is built here rather than with setenv() in a forked
  // child: nothing that allocates may run between fork and exec in a
  // multi-threaded process.
  auto env_store = child_environment(environ, p.inherit_env, p.env);
  std::vector<char*> envp;
  for (auto& kv : env_store)
    envp.push_back(kv.data());
  envp.push_back(nullptr);
  // posix_spawn (a vfork-style clone in glibc) rather than fork: no copy of
  // the node's page tables per attempt, which made spawning cost
  // milliseconds in a large process. The child gets its own process group,
  // an empty signal mask and default signal dispositions.
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawn_file_actions_adddup2(&fa, rep[1], 3);
  if (!p.cwd.empty())
    posix_spawn_file_actions_addchdir_np(&fa, p.cwd.c_str());
  // Nothing of the node but the four pipes: libraries open sockets (the
  // node's NATS connection) and log files without close-on-exec.
  posix_spawn_file_actions_addclosefrom_np(&fa, 4);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
                                      POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
  int spawn_errno = 0;
  {
    child_spawn_guard guard;
    spawn_errno =
        posix_spawnp(&pid, args[0], &fa, &attr, args.data(), envp.data());
    if (spawn_errno == 0)
      guard.own(pid);
  }
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close_fd(in[0]);
  close_fd(out[1]);
  close_fd(err[1]);
  close_fd(rep[1]);
  ends = {in[1], out[0], err[0], rep[0]};
  if (spawn_errno == 0)
    return std::nullopt;
  close_fd(ends.in);
  close_fd(ends.out);
  close_fd(ends.err);
  close_fd(ends.report);
  auto where = p.cwd.empty() ? std::string{} : " in '" + p.cwd + "'";
  return stage_failure("spawn_failed",
                       "cannot run '" + p.argv.front() + "'" + where + ": " +
                           std::strerror(spawn_errno),
                       false);
}

/// A descriptor that becomes readable when `pid` exits, or -1 (kernels
/// before 5.3). By syscall: glibc 2.36's <sys/pidfd.h> lacks C linkage.
int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

/// True once `pid` has exited. It stays unreaped (WNOWAIT), so that its pid,
/// which is also its process group id, cannot be reused before the group is
/// killed.
bool has_exited(pid_t pid) {
  siginfo_t info{};
  if (waitid(P_PID, static_cast<id_t>(pid), &info,
             WEXITED | WNOHANG | WNOWAIT) != 0)
    return errno == ECHILD;
  return info.si_pid == pid;
}

/// What the program wrote, and why reading stopped.
struct program_io {
  std::string out;
  std::string err;
  bool too_large = false;
  bool cancelled = false;
};

/// One exchange with a running program: what it was given and wrote.
struct exchange_state {
  const exec_params& p;
  const std::string& input;
  pid_t pid;
  child_pipes& ends;
  attempt_control& ctl;
  report_lines reports;
  program_io io;
  std::size_t written = 0;
  /// The program exited: what it wrote is read until then.
  std::optional<clock_type::time_point> drain_until;
  /// Cancelled: the program got SIGTERM, and SIGKILL comes then.
  std::optional<clock_type::time_point> stop_by;
};

/// True when reading is over: the program exited and its output is read
/// (or the drain grace passed), or a cancelled program exited or used up
/// its grace.
bool exchange_over(exchange_state& x) {
  auto now = clock_type::now();
  if (!x.stop_by && x.ctl.cancelled()) {
    x.io.cancelled = true;
    x.stop_by = now + x.p.cancel_grace;
  }
  bool exited = has_exited(x.pid);
  if (x.stop_by)
    return exited || now >= *x.stop_by;
  if (!x.drain_until && exited)
    x.drain_until = now + x.p.drain_grace;
  return x.drain_until &&
         ((x.ends.out < 0 && x.ends.err < 0) || now >= *x.drain_until);
}

/// How long the loop may sleep in poll().
int poll_ms(const exchange_state& x, int pidfd) {
  // Woken by output, the exit (pidfd) or a cancel (eventfd); the regular
  // wake-up only covers a missing pidfd or eventfd, and a report waiting
  // for its turn.
  std::int64_t ms = pidfd >= 0 ? 200 : 10;
  if (x.reports.pending())
    ms = std::min<std::int64_t>(ms, report_lines::every.count());
  for (auto until : {x.drain_until, x.stop_by})
    if (until)
      ms = std::clamp<std::int64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(
              *until - clock_type::now())
                  .count() +
              1,
          0, ms);
  return static_cast<int>(ms);
}

/// Handles a ready descriptor: writes input, reads output or reports.
void on_ready(exchange_state& x, int fd, char* buf, std::size_t size) {
  auto& ends = x.ends;
  if (fd == ends.in) {
    auto w = write(fd, x.input.data() + x.written, x.input.size() - x.written);
    if (w > 0)
      x.written += static_cast<std::size_t>(w);
    // A program that does not read its input (EPIPE) is its business.
    if ((w < 0 && errno != EAGAIN) || x.written == x.input.size())
      close_fd(ends.in);
    return;
  }
  auto r = read(fd, buf, size);
  if (r <= 0) {
    if (r == 0 || (errno != EAGAIN && errno != EINTR))
      close_fd(fd == ends.out   ? ends.out
               : fd == ends.err ? ends.err
                                : ends.report);
    return;
  }
  auto n = static_cast<std::size_t>(r);
  if (fd == ends.report) {
    x.reports.feed(buf, n);
  } else if (fd == ends.out) {
    x.io.out.append(buf, n);
    if (x.io.out.size() > x.p.max_output)
      x.io.too_large = true;
  } else {
    x.io.err.append(buf, n);
    if (x.io.err.size() > 64 * 1024)
      x.io.err = x.io.err.substr(x.io.err.size() - 32 * 1024);
  }
}

/// Writes the input, reads stdout, stderr and reports, until the program
/// exited (plus the drain grace while something else holds its pipes), the
/// attempt was cancelled (plus the program's grace to exit), or stdout grew
/// too large.
program_io exchange(const exec_params& p, const std::string& input, pid_t pid,
                    child_pipes& ends, attempt_control& ctl,
                    const std::function<void(std::string)>& on_report) {
  exchange_state x{p,  input, pid, ends, ctl, report_lines{on_report},
                   {}, 0,     {},  {}};
  for (int fd : {ends.in, ends.out, ends.err, ends.report})
    set_nonblocking(fd);
  if (input.empty())
    close_fd(ends.in);
  // Readable once the program exits, so that the loop wakes at once;
  // without one (kernels before 5.3) the loop looks every few milliseconds.
  int pidfd = open_pidfd(pid);
  char buf[65536];
  while (!exchange_over(x) && !x.io.too_large) {
    pollfd fds[6];
    nfds_t n = 0;
    for (auto [fd, events] : {std::pair{ends.out, POLLIN},
                              {ends.err, POLLIN},
                              {ends.report, POLLIN},
                              {ends.in, POLLOUT},
                              {x.stop_by ? -1 : ctl.wake_fd(), POLLIN},
                              {x.drain_until ? -1 : pidfd, POLLIN}})
      if (fd >= 0)
        fds[n++] = {fd, static_cast<short>(events), 0};
    if (poll(fds, n, poll_ms(x, pidfd)) < 0 && errno != EINTR)
      break;
    for (nfds_t i = 0; i < n; ++i)
      if (fds[i].revents && fds[i].fd != ctl.wake_fd() && fds[i].fd != pidfd)
        on_ready(x, fds[i].fd, buf, sizeof(buf));
    x.reports.send(false);
  }
  x.reports.send(true); // the last report goes before the outcome
  close_fd(pidfd);
  close_fd(ends.in);
  close_fd(ends.report);
  return std::move(x.io);
}

/// Kills what is left of the attempt and reaps the program; its wait status.
int end_program(pid_t pid, attempt_control& ctl) {
  // From here on only this thread signals the group, and before the reap:
  // the group id is the program's pid, free for reuse once it is reaped.
  ctl.reaped();
  // Background children, and the program itself if it still runs (cancel,
  // output too large). Children that left the group (setsid) survive; the
  // orphan reaper reaps them when they exit (runtime/exec/child_reaper.hpp).
  kill(-pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  release_child(pid);
  return status;
}

stage_outcome outcome_of(const exec_params& p, const program_io& io, int status,
                         bool cancelled) {
  auto prog = p.argv.front();
  auto err_text = trim(tail_of(io.err, 2048));
  if (io.too_large)
    return stage_failure("output_too_large",
                         "'" + prog + "' wrote more than " +
                             std::to_string(p.max_output) + " bytes to stdout",
                         false);
  if (cancelled)
    return stage_failure("cancelled", "attempt abandoned", false);
  if (WIFSIGNALED(status)) {
    auto sig = WTERMSIG(status);
    const char* name = sigabbrev_np(sig);
    return stage_failure("signal",
                         "'" + prog + "' killed by SIG" +
                             (name ? name : std::to_string(sig)) +
                             (err_text.empty() ? "" : ": " + err_text),
                         true);
  }
  int code = WEXITSTATUS(status);
  if (code != 0) {
    std::string msg = "exit " + std::to_string(code);
    if (!err_text.empty())
      msg += ": " + err_text;
    return stage_failure("exit_code", msg, p.retryable.count(code) > 0);
  }
  auto text = trim(io.out);
  if (text.empty())
    return stage_success("{}");
  // Depth is checked on the bytes before parsing (json_guard.hpp): a
  // program's output must not be able to overflow the node's stack.
  if (json_nesting(text, stage_output_depth) > stage_output_depth)
    return stage_failure("invalid_output",
                         "'" + prog + "' wrote JSON nested deeper than " +
                             std::to_string(stage_output_depth) + " levels",
                         false);
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded())
    return stage_failure("invalid_output",
                         "'" + prog +
                             "' did not write one JSON document on "
                             "stdout; it began with: " +
                             text.substr(0, 200),
                         false);
  return stage_success(doc.dump());
}

} // namespace

const std::vector<std::string>& default_inherit_env() {
  static const std::vector<std::string> names = {
      "PATH", "HOME",     "USER", "LOGNAME", "SHELL",
      "LANG", "LANGUAGE", "LC_*", "TZ",      "TMPDIR"};
  return names;
}

std::vector<std::string>
child_environment(char** node_env, const std::vector<std::string>& inherit,
                  const std::vector<std::pair<std::string, std::string>>& own) {
  std::vector<std::string> out;
  for (char** e = node_env; e && *e; ++e) {
    std::string_view kv{*e};
    auto name = kv.substr(0, kv.find('='));
    // troupe's own settings and secrets (TROUPE_NATS_PASSWORD,
    // TROUPE_PG_URL, ...) never reach a program, whatever is listed.
    if (name.substr(0, 7) == "TROUPE_")
      continue;
    if (std::any_of(own.begin(), own.end(),
                    [&](const auto& kv) { return kv.first == name; }))
      continue;
    if (std::any_of(inherit.begin(), inherit.end(),
                    [&](const auto& pat) { return matches(name, pat); }))
      out.emplace_back(kv);
  }
  for (auto& [k, v] : own)
    out.push_back(k + "=" + v);
  return out;
}

attempt_control::attempt_control()
    : wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

attempt_control::~attempt_control() {
  if (wake_fd_ >= 0)
    close(wake_fd_);
}

void attempt_control::cancel() {
  std::lock_guard<std::mutex> guard{mtx_};
  if (cancelled_)
    return;
  cancelled_ = true;
  // The whole process group; the attempt's thread sends SIGKILL after
  // the program's grace (exec_params::cancel_grace).
  if (pid_ > 0 && !reaped_)
    kill(-pid_, SIGTERM);
  if (wake_fd_ >= 0) {
    std::uint64_t one = 1;
    // Cannot fail short of a full counter, which one write never reaches.
    [[maybe_unused]] auto n = write(wake_fd_, &one, sizeof(one));
  }
}

bool attempt_control::cancelled() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return cancelled_;
}

void attempt_control::started(pid_t pid) {
  std::lock_guard<std::mutex> guard{mtx_};
  pid_ = pid;
  if (cancelled_)
    kill(-pid, SIGKILL);
}

void attempt_control::reaped() {
  std::lock_guard<std::mutex> guard{mtx_};
  reaped_ = true;
}

stage_outcome run_attempt(const exec_params& p, const std::string& input,
                          attempt_control& ctl,
                          const std::function<void()>& on_spawn,
                          const std::function<void(std::string)>& on_report) {
  child_pipes ends;
  pid_t pid = -1;
  if (auto failed = spawn_program(p, ends, pid))
    return std::move(*failed);
  ctl.started(pid);
  if (on_spawn)
    on_spawn();
  auto io = exchange(p, input, pid, ends, ctl, on_report);
  close_fd(ends.out);
  close_fd(ends.err);
  auto status = end_program(pid, ctl);
  return outcome_of(p, io, status, io.cancelled || ctl.cancelled());
}

} // namespace troupe
