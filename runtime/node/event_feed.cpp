#include "runtime/node/event_feed.hpp"

#include <algorithm>

#include "config/config_loader.hpp"
#include "messages/errc.hpp"

namespace troupe {

namespace {

bool contains(const std::vector<std::string>& xs, std::string_view x) {
  return std::find(xs.begin(), xs.end(), x) != xs.end();
}

bool is_event_type(std::string_view t) {
  return !t.empty() && t.size() <= 64 &&
         t.find_first_not_of("abcdefghijklmnopqrstuvwxyz_.") ==
             std::string_view::npos;
}

caf::error bad_filter(std::string what) {
  return make_error(errc::invalid_payload, std::move(what));
}

caf::error add_types(feed_filter& f, const std::string& list) {
  std::size_t from = 0;
  while (from <= list.size()) {
    auto to = std::min(list.find(',', from), list.size());
    auto t = list.substr(from, to - from);
    if (!is_event_type(t))
      return bad_filter("types: '" + t.substr(0, 64) +
                        "' is not an event type (a-z, '_' and '.')");
    if (f.types.size() == 32)
      return bad_filter("types: at most 32 event types");
    f.types.push_back(std::move(t));
    from = to + 1;
  }
  return {};
}

} // namespace

bool feed_filter::wants(std::string_view event_pipeline, std::string_view tail,
                        std::string_view type) const {
  if (pipeline != "*" && pipeline != event_pipeline)
    return false;
  if (types.empty() && job_tails.empty())
    return true;
  return contains(job_tails, tail) || contains(types, type);
}

caf::expected<feed_filter>
feed_filter_of(const std::multimap<std::string, std::string>& query) {
  feed_filter f;
  for (const auto& [key, value] : query) {
    if (key == "pipeline") {
      if (!is_subject_token(value))
        return bad_filter("pipeline must be a pipeline name");
      f.pipeline = value;
    } else if (key == "types") {
      if (auto err = add_types(f, value))
        return err;
    } else if (key == "job") {
      if (value.empty() || value.size() > 1024)
        return bad_filter("job: a job id of 1 to 1024 bytes");
      if (f.job_tails.size() == 64)
        return bad_filter("job: at most 64 jobs");
      f.job_tails.push_back(subject_tail(value));
    }
  }
  return f;
}

std::string_view event_type_of(std::string_view body) {
  constexpr std::string_view key = "\"type\":\"";
  auto at = body.rfind(key);
  if (at == std::string_view::npos)
    return {};
  auto value = body.substr(at + key.size());
  return value.substr(0, value.find('"'));
}

event_feed::event_feed(feed_filter filter, std::size_t capacity)
    : filter_(std::move(filter)), capacity_(capacity) {}

void event_feed::push(frame f) {
  {
    std::lock_guard<std::mutex> lock{mtx_};
    if (queue_.size() >= capacity_) {
      queue_.pop_front();
      ++dropped_;
    }
    queue_.push_back(std::move(f));
  }
  cv_.notify_one();
}

std::vector<event_feed::frame>
event_feed::take(std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock{mtx_};
  cv_.wait_for(lock, wait, [this] { return !queue_.empty() || woken_; });
  std::vector<frame> out(std::make_move_iterator(queue_.begin()),
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
    auto dot = rest.find('.');
    auto pipeline = rest.substr(0, dot);
    auto tail = dot == std::string_view::npos ? std::string_view{}
                                              : rest.substr(dot + 1);
    std::string_view body = m.data();
    auto type = event_type_of(body);
    event_feed::frame shared;
    std::lock_guard<std::mutex> lock{mtx};
    for (const auto& f : feeds)
      if (f->filter().wants(pipeline, tail, type)) {
        if (!shared)
          shared = std::make_shared<const std::string>(sse_frame(body));
        f->push(shared);
      }
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
event_hub::open(feed_filter filter, std::size_t capacity) {
  auto feed = std::make_shared<event_feed>(std::move(filter), capacity);
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

std::string sse_frame(std::string_view event) {
  std::string out;
  out.reserve(event.size() + 8);
  out += "data: ";
  out += event;
  for (auto i = std::size_t{6}; i < out.size(); ++i)
    if (out[i] == '\n' || out[i] == '\r')
      out[i] = ' ';
  out += "\n\n";
  return out;
}

} // namespace troupe
