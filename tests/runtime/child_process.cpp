#include "child_process.hpp"

#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <unistd.h>

#include <sys/wait.h>

namespace troupe::test {

child_process::child_process(std::vector<std::string> argv,
                             std::string log_file, std::vector<std::string> env)
    : log_file_(std::move(log_file)) {
  pid_ = fork();
  if (pid_ == 0) {
    // Child: a clean signal mask (the test may block signals), own process
    // group so a kill reaches everything it starts, output to the log.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    setpgid(0, 0);
    int fd = open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0)
      dup2(devnull, 0);
    for (auto& e : env)
      putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> args;
    for (auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
}

child_process::~child_process() {
  if (running()) {
    kill(pid_, SIGKILL);
    wait(std::chrono::seconds{10});
  }
}

bool child_process::running() {
  if (pid_ <= 0 || status_ != -1)
    return false;
  int st = 0;
  auto r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  return true;
}

void child_process::signal(int sig) {
  if (running())
    kill(pid_, sig);
}

int child_process::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline)
      return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return status_;
}

std::string child_process::output() const {
  return read_file(log_file_);
}

bool child_process::wait_for_output(const std::string& text,
                                    std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (output().find(text) != std::string::npos)
      return true;
    if (std::chrono::steady_clock::now() >= deadline || !running())
      return output().find(text) != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out{path};
  out << text;
  out.flush();
  // A file a test meant to write and did not (a directory that does not
  // exist) otherwise shows up much later as something else.
  if (!out)
    throw std::runtime_error("cannot write " + path);
}

int http_port_of(const child_process& node) {
  auto log = node.output();
  const std::string mark = "http on 127.0.0.1:";
  auto at = log.find(mark);
  return at == std::string::npos ? 0
                                 : std::atoi(log.c_str() + at + mark.size());
}

} // namespace troupe::test
