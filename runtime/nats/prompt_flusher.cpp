#include "runtime/nats/prompt_flusher.hpp"

namespace troupe {

prompt_flusher::prompt_flusher(natsConnection* conn,
                               std::chrono::microseconds min_gap)
    : conn_(conn), min_gap_(min_gap), thread_([this] { run(); }) {}

prompt_flusher::~prompt_flusher() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void prompt_flusher::kick() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (wanted_)
      return; // one is asked for already: it will carry this publish too
    wanted_ = true;
  }
  cv_.notify_one();
}

std::uint64_t prompt_flusher::flushes() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return flushes_;
}

void prompt_flusher::run() {
  std::unique_lock<std::mutex> lock{mtx_};
  while (true) {
    cv_.wait(lock, [this] { return wanted_ || stop_; });
    if (stop_)
      return;
    wanted_ = false;
    lock.unlock();
    auto started = std::chrono::steady_clock::now();
    // Writes the buffer at once, then waits for the PONG. While nats.c
    // reconnects, the PING waits in its pending buffer and this waits the
    // whole second (only this thread: kicks meanwhile are one more flush,
    // and a stop waits for it at most that long).
    natsConnection_FlushTimeout(conn_, 1000);
    auto next = started + min_gap_;
    if (next > std::chrono::steady_clock::now())
      std::this_thread::sleep_until(next);
    lock.lock();
    ++flushes_;
  }
}

} // namespace troupe
