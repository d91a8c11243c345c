#pragma once

// A fixed set of threads for blocking work (child processes, blocking
// client calls), so that CAF's scheduler threads never wait on I/O. The
// thread count bounds the concurrency of that work.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace troupe {

class blocking_pool {
public:
  explicit blocking_pool(std::size_t threads);
  ~blocking_pool();

  blocking_pool(const blocking_pool&) = delete;
  blocking_pool& operator=(const blocking_pool&) = delete;

  /// Queues `fn`; false (and `fn` dropped) once stop() was called.
  bool post(std::function<void()> fn);

  /// Stops intake, finishes queued work, joins the threads. Idempotent.
  void stop();

  /// Tasks waiting for a thread.
  std::size_t queued() const;

  std::size_t size() const noexcept { return threads_.size(); }

private:
  void run();

  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

} // namespace troupe
