// The pause set of every pipeline, refreshed from the store
// (runtime/node/node_admin.hpp).
#include "runtime/node/node_admin.hpp"

#include <spdlog/spdlog.h>

namespace troupe {

pipeline_controls::pipeline_controls(std::shared_ptr<admin_store> store,
                                     std::chrono::milliseconds interval)
    : store_(std::move(store)), interval_(interval) {}

pipeline_controls::~pipeline_controls() {
  stop();
}

bool pipeline_controls::refresh() {
  try {
    auto now = store_->paused_pipelines();
    std::lock_guard<std::mutex> guard{mtx_};
    paused_ = std::move(now);
    return true;
  } catch (const std::exception& e) {
    spdlog::debug("pipeline controls: {}", e.what());
    return false;
  }
}

std::set<std::string> pipeline_controls::paused() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return paused_;
}

void pipeline_controls::start() {
  thread_ = std::thread{[this] {
    std::unique_lock<std::mutex> lock{mtx_};
    while (!stopping_) {
      lock.unlock();
      refresh();
      lock.lock();
      cv_.wait_for(lock, interval_, [this] { return stopping_; });
    }
  }};
}

void pipeline_controls::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

} // namespace troupe
