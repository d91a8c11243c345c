#include "runtime/common/blocking_pool.hpp"

namespace troupe {

blocking_pool::blocking_pool(std::size_t threads, std::size_t max_queued)
    : max_queued_(max_queued) {
  for (std::size_t i = 0; i < std::max<std::size_t>(threads, 1); ++i)
    threads_.emplace_back([this] { run(); });
}

blocking_pool::~blocking_pool() {
  stop();
}

bool blocking_pool::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopping_ || (max_queued_ > 0 && tasks_.size() >= max_queued_))
      return false;
    tasks_.push_back(std::move(fn));
  }
  cv_.notify_one();
  return true;
}

void blocking_pool::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopping_ && threads_.empty())
      return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable() && t.get_id() != std::this_thread::get_id())
      t.join();
  threads_.clear();
}

bool blocking_pool::stopping() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return stopping_;
}

std::size_t blocking_pool::queued() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return tasks_.size();
}

pool_limiter::pool_limiter(std::shared_ptr<blocking_pool> pool,
                           std::size_t limit)
    : pool_(std::move(pool)), limit_(limit) {}

void pool_limiter::submit(std::function<void()> task,
                          std::function<void()> reject) {
  item it{std::move(task), std::move(reject)};
  if (limit_ > 0) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (running_ >= limit_) {
      waiting_.push_back(std::move(it));
      return;
    }
    ++running_;
  }
  dispatch(std::move(it));
}

void pool_limiter::dispatch(item it) {
  // A loop, not a recursion through release(): a stopped pool rejects a
  // long queue without a deep stack.
  for (;;) {
    auto reject = std::move(it.reject);
    auto self = shared_from_this();
    if (pool_->post([self, task = std::move(it.task)] {
          task();
          self->release();
        }))
      return;
    if (reject)
      reject();
    if (limit_ == 0)
      return;
    std::lock_guard<std::mutex> guard{mtx_};
    if (waiting_.empty()) {
      --running_;
      return;
    }
    it = std::move(waiting_.front());
    waiting_.pop_front();
  }
}

void pool_limiter::release() {
  if (limit_ == 0)
    return;
  item next;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (waiting_.empty()) {
      --running_;
      return;
    }
    next = std::move(waiting_.front());
    waiting_.pop_front();
  }
  dispatch(std::move(next));
}

void blocking_pool::run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock{mtx_};
      cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty())
        return; // stopping and drained
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

} // namespace troupe
