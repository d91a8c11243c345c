#include "runtime/common/shutdown.hpp"

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>
#include <unistd.h>

#include <spdlog/spdlog.h>

namespace troupe {

namespace {

std::mutex mtx;
std::condition_variable cv;
std::atomic<bool> requested{false};
std::atomic<int> signal_number{0};

void raise_request(int sig) {
  {
    std::lock_guard<std::mutex> guard{mtx};
    if (sig != 0 && signal_number == 0)
      signal_number = sig;
    requested = true;
  }
  cv.notify_all();
}

} // namespace

void install_shutdown_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    // Blocked here, before any other thread exists, so every thread inherits
    // the mask and the watcher is the only one that receives them. Children
    // reset the mask after fork.
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    // A peer closing a pipe or socket is an error to handle, never a reason
    // for the process to die.
    std::signal(SIGPIPE, SIG_IGN);
    std::thread{[set] {
      int count = 0;
      for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
          continue;
        ++count;
        if (count == 1) {
          raise_request(sig);
        } else if (count == 2) {
          spdlog::warn("received {} again: still shutting down (a third "
                       "one exits at once)",
                       sig == SIGINT ? "SIGINT" : "SIGTERM");
        } else {
          spdlog::error("received a third signal: exiting without cleanup");
          _exit(130);
        }
      }
    }}.detach();
  });
}

void request_shutdown() {
  raise_request(0);
}

bool shutdown_requested() noexcept {
  return requested.load();
}

bool wait_for_shutdown(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock{mtx};
  return cv.wait_for(lock, timeout, [] { return requested.load(); });
}

int shutdown_signal() noexcept {
  return signal_number.load();
}

} // namespace troupe
