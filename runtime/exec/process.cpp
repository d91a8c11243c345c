#include "runtime/exec/process.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <thread>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "messages/errc.hpp"
#include "runtime/exec/child_reaper.hpp"

namespace troupe {

namespace {

/// In the child after fork: undo what the parent set up for itself.
void prepare_child(int out_fd) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  // Own process group: Ctrl-C in the terminal reaches troupe only, which
  // then stops its children in order.
  setpgid(0, 0);
  int in = open("/dev/null", O_RDONLY);
  if (in >= 0) {
    dup2(in, 0);
    close(in);
  }
  if (out_fd >= 0) {
    dup2(out_fd, 1);
    dup2(out_fd, 2);
    close(out_fd);
  }
}

std::vector<char*> c_args(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (auto& a : argv)
    out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

} // namespace

caf::expected<pid_t> spawn_process(const std::vector<std::string>& argv,
                                   const std::string& log_file) {
  if (argv.empty())
    return make_error(errc::internal, "empty command");
  int fd = open(log_file.empty() ? "/dev/null" : log_file.c_str(),
                O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    return make_error(errc::internal,
                      "cannot open " + log_file + ": " + std::strerror(errno));
  auto args = c_args(argv);
  pid_t pid;
  {
    // Waited for by pid (wait_process): not the orphan reaper's to reap.
    child_spawn_guard guard;
    pid = fork();
    if (pid == 0) {
      int out = dup(fd);
      prepare_child(out);
      execvp(args[0], args.data());
      _exit(127);
    }
    guard.own(pid);
  }
  if (pid < 0) {
    close(fd);
    return make_error(errc::internal,
                      std::string{"fork: "} + std::strerror(errno));
  }
  close(fd);
  return pid;
}

int wait_process(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    auto r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      release_child(pid);
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    if (r < 0) {
      bool gone = errno == ECHILD;
      if (gone)
        release_child(pid);
      return gone ? 0 : -1;
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
}

void stop_process(pid_t pid, std::chrono::milliseconds grace) {
  if (pid <= 0)
    return;
  kill(pid, SIGTERM);
  if (wait_process(pid, grace) == -1) {
    kill(pid, SIGKILL);
    wait_process(pid, std::chrono::seconds{10});
  }
}

command_result run_command(const std::vector<std::string>& argv,
                           std::chrono::milliseconds timeout) {
  command_result res;
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    res.output = std::string{"pipe: "} + std::strerror(errno);
    return res;
  }
  auto args = c_args(argv);
  pid_t pid;
  {
    // Waited for by pid (wait_process): not the orphan reaper's to reap.
    child_spawn_guard guard;
    pid = fork();
    if (pid == 0) {
      int out = dup(pipefd[1]);
      prepare_child(out);
      execvp(args[0], args.data());
      _exit(127);
    }
    guard.own(pid);
  }
  close(pipefd[1]);
  if (pid < 0) {
    close(pipefd[0]);
    res.output = std::string{"fork: "} + std::strerror(errno);
    return res;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      kill(pid, SIGKILL);
      res.output += "\n(timed out)";
      break;
    }
    pollfd p{pipefd[0], POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(std::min<long>(left, 200)));
    if (r > 0) {
      auto n = read(pipefd[0], buf, sizeof(buf));
      if (n <= 0)
        break;
      res.output.append(buf, static_cast<std::size_t>(n));
    }
  }
  close(pipefd[0]);
  res.exit_code = wait_process(pid, std::chrono::seconds{10});
  return res;
}

bool port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

bool port_free(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos)
    return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    auto end = dirs.find(':', start);
    if (end == std::string::npos)
      end = dirs.size();
    auto cand = dirs.substr(start, end - start) + "/" + name;
    if (access(cand.c_str(), X_OK) == 0)
      return cand;
    start = end + 1;
  }
  return "";
}

} // namespace troupe
