#include "runtime/node/event_feed.hpp"

namespace troupe {

caf::expected<std::shared_ptr<event_feed>>
event_feed::open(nats_client& nats, const std::string& subject,
                 std::size_t capacity) {
  auto feed = std::make_shared<event_feed>();
  feed->capacity_ = capacity;
  subscribe_options so;
  so.unbounded_pending = true;
  // The subscription lives in the feed; its handler holds a weak pointer,
  // so a message that arrives while the feed goes away is dropped.
  auto sub = nats_subscription::open(
      nats, subject,
      [weak = std::weak_ptr<event_feed>(feed)](nats_msg m) {
        if (auto f = weak.lock())
          f->push(std::string{m.data()});
      },
      so);
  if (!sub)
    return sub.error();
  feed->sub_ = std::move(*sub);
  // The server has the subscription once this returns: a client that saw
  // the feed open misses nothing published after.
  nats.flush(1000);
  return feed;
}

void event_feed::push(std::string event) {
  {
    std::lock_guard<std::mutex> lock{mtx_};
    if (queue_.size() >= capacity_) {
      queue_.pop_front();
      ++dropped_;
    }
    queue_.push_back(std::move(event));
  }
  cv_.notify_one();
}

std::vector<std::string> event_feed::take(std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock{mtx_};
  cv_.wait_for(lock, wait, [this] { return !queue_.empty() || woken_; });
  std::vector<std::string> out(std::make_move_iterator(queue_.begin()),
                               std::make_move_iterator(queue_.end()));
  queue_.clear();
  return out;
}

std::int64_t event_feed::dropped() const {
  std::lock_guard<std::mutex> lock{mtx_};
  return dropped_;
}

void event_feed::wake() {
  {
    std::lock_guard<std::mutex> lock{mtx_};
    woken_ = true;
  }
  cv_.notify_all();
}

void event_feed::close() {
  nats_subscription gone = std::move(sub_);
}

std::string sse_frame(const std::string& event) {
  std::string out = "data: ";
  for (char c : event)
    out += (c == '\n' || c == '\r') ? ' ' : c;
  out += "\n\n";
  return out;
}

} // namespace troupe
