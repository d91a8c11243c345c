#pragma once

// A fixed set of threads for blocking work (child processes, blocking
// client calls), so that CAF's scheduler threads never wait on I/O. The
// thread count bounds the concurrency of that work.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace troupe {

class blocking_pool {
public:
  /// `max_queued` bounds the tasks waiting for a thread (0: unbounded);
  /// beyond it post() refuses, so a flood sheds load instead of growing
  /// memory without limit.
  explicit blocking_pool(std::size_t threads, std::size_t max_queued = 0);
  ~blocking_pool();

  blocking_pool(const blocking_pool&) = delete;
  blocking_pool& operator=(const blocking_pool&) = delete;

  /// Queues `fn`; false (and `fn` dropped) once stop() was called or when
  /// `max_queued` tasks wait already.
  bool post(std::function<void()> fn);

  /// True once stop() was called.
  bool stopping() const;

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
  std::size_t max_queued_ = 0;
  std::vector<std::thread> threads_;
};

/// Runs tasks on a blocking_pool, at most `limit` of them at once (0: no
/// limit of its own). The others wait here, in order, without holding a
/// pool thread, so that one busy stage cannot take every thread from the
/// rest. Create with std::make_shared.
class pool_limiter : public std::enable_shared_from_this<pool_limiter> {
public:
  pool_limiter(std::shared_ptr<blocking_pool> pool, std::size_t limit);

  /// Runs `task` on the pool once a slot is free; runs `reject` instead
  /// (on the calling or a pool thread) if the pool has stopped by then.
  void submit(std::function<void()> task, std::function<void()> reject);

private:
  struct item {
    std::function<void()> task;
    std::function<void()> reject;
  };

  /// Hands `it` (holding a slot) to the pool; if the pool refuses, rejects
  /// it and every task still waiting.
  void dispatch(item it);

  /// A task ended: its slot goes to the next waiting task, if any.
  void release();

  std::shared_ptr<blocking_pool> pool_;
  std::size_t limit_;
  std::mutex mtx_;
  std::deque<item> waiting_;
  std::size_t running_ = 0;
};

} // namespace troupe
