#include "runtime/node/event_feed.hpp"

#include <algorithm>

namespace troupe {

event_feed::event_feed(std::string pipeline, std::size_t capacity)
    : pipeline_(std::move(pipeline)), capacity_(capacity) {}

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

/// What the subscription's handler shares with the hub: it outlives
/// neither, and the handler holds it weakly.
struct event_hub::core {
  std::mutex mtx;
  std::vector<std::shared_ptr<event_feed>> feeds;
  std::unique_ptr<nats_subscription> sub;
  /// Length of "<prefix>.events.", where a subject's pipeline starts.
  std::size_t pipeline_at = 0;

  void deliver(const nats_msg& m) {
    std::string_view subject = m.subject();
    auto rest = subject.substr(std::min(pipeline_at, subject.size()));
    auto pipeline = rest.substr(0, rest.find('.'));
    std::string body{m.data()};
    std::lock_guard<std::mutex> lock{mtx};
    for (const auto& f : feeds)
      if (f->pipeline() == "*" || f->pipeline() == pipeline)
        f->push(body);
  }
};

event_hub::event_hub(nats_client& nats, std::string prefix)
    : nats_(nats), prefix_(std::move(prefix)), core_(std::make_shared<core>()) {
  core_->pipeline_at = prefix_.size() + std::string{".events."}.size();
}

event_hub::~event_hub() {
  std::unique_ptr<nats_subscription> gone;
  {
    std::lock_guard<std::mutex> lock{core_->mtx};
    gone = std::move(core_->sub);
    core_->feeds.clear();
  }
}

caf::expected<std::shared_ptr<event_feed>>
event_hub::open(const std::string& pipeline, std::size_t capacity) {
  auto feed = std::make_shared<event_feed>(pipeline, capacity);
  std::lock_guard<std::mutex> lock{core_->mtx};
  if (!core_->sub) {
    subscribe_options so;
    so.unbounded_pending = true;
    auto sub = nats_subscription::open(
        nats_, prefix_ + ".events.>",
        [weak = std::weak_ptr<core>(core_)](nats_msg m) {
          if (auto c = weak.lock())
            c->deliver(m);
        },
        so);
    if (!sub)
      return sub.error();
    core_->sub = std::make_unique<nats_subscription>(std::move(*sub));
    nats_.flush(1000);
  }
  core_->feeds.push_back(feed);
  return feed;
}

void event_hub::close(const std::shared_ptr<event_feed>& feed) {
  std::unique_ptr<nats_subscription> gone;
  std::lock_guard<std::mutex> lock{core_->mtx};
  auto& feeds = core_->feeds;
  feeds.erase(std::remove(feeds.begin(), feeds.end(), feed), feeds.end());
  if (feeds.empty())
    gone = std::move(core_->sub);
}

std::string sse_frame(const std::string& event) {
  std::string out = "data: ";
  for (char c : event)
    out += (c == '\n' || c == '\r') ? ' ' : c;
  out += "\n\n";
  return out;
}

} // namespace troupe
