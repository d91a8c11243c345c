#pragma once

// The live feeds of the HTTP API (`GET /api/v1/events`, Server-Sent
// Events): one NATS subscription to every event per node (the event hub),
// held while at least one feed is open, and for each feed a bounded queue
// between NATS's thread and the HTTP thread that writes its stream. A
// subscription per feed made the node receive each event once per open
// dashboard (10 dashboards tripled its CPU per job). Events are best
// effort (docs/decisions.md): a feed that falls behind drops its oldest
// events and says how many.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "runtime/nats/nats_client.hpp"
#include "runtime/nats/nats_subscription.hpp"

namespace troupe {

/// Which events a feed wants: those of `pipeline` ("*": every pipeline)
/// whose type is in `types` or whose job is in `jobs`; with both empty,
/// every event. A page asks only for what it draws (the overview: terminal
/// events), so an open dashboard costs the node what it shows, not every
/// event of the cluster. Jobs are matched by their subject's tail, so ids
/// that the subject cannot tell apart ("a b", "a_b") both pass: a reader
/// checks the body's exact id.
struct feed_filter {
  std::string pipeline = "*";
  std::vector<std::string> types;
  /// subject_tail() of each wanted job id.
  std::vector<std::string> job_tails;

  /// `tail` is what follows the pipeline in the event's subject, `type`
  /// its event_type_of() (read once per event, not once per feed).
  bool wants(std::string_view pipeline, std::string_view tail,
             std::string_view type) const;
};

/// The filter a feed's query asks for: `pipeline=<name>`,
/// `types=<type>,<type>...` (at most 32) and `job=<id>` (repeated, at most
/// 64). A malformed one is refused with what is wrong.
caf::expected<feed_filter>
feed_filter_of(const std::multimap<std::string, std::string>& query);

/// The value of an event's top-level "type", read without parsing: troupe
/// writes its keys in order and "type" last, so it is the last one (a
/// rogue body may be misread, which only filters it differently).
std::string_view event_type_of(std::string_view body);

class event_feed {
public:
  /// Keeps at most `capacity` undelivered events that `filter` wants.
  event_feed(feed_filter filter, std::size_t capacity);

  const feed_filter& filter() const { return filter_; }

  /// An event's SSE frame, built once and shared by every feed that
  /// wants it.
  using frame = std::shared_ptr<const std::string>;

  /// Queues an event's frame (NATS's thread), dropping the oldest when full.
  void push(frame f);

  /// The frames that arrived, waiting at most `wait` for the first.
  std::vector<frame> take(std::chrono::milliseconds wait);

  /// Events dropped because the reader fell behind.
  std::int64_t dropped() const;

  /// Wakes a waiting take() (the node is stopping).
  void wake();

private:
  const feed_filter filter_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<frame> queue_;
  std::size_t capacity_ = 0;
  std::int64_t dropped_ = 0;
  bool woken_ = false;
};

/// The node's one subscription to `<prefix>.events.>`, fanned out to the
/// open feeds.
class event_hub {
public:
  event_hub(nats_client& nats, std::string prefix);
  ~event_hub();

  event_hub(const event_hub&) = delete;
  event_hub& operator=(const event_hub&) = delete;

  /// A new feed; the first one subscribes (and waits until the server has
  /// the subscription, so a client that saw the feed open misses nothing
  /// published after).
  caf::expected<std::shared_ptr<event_feed>> open(feed_filter filter,
                                                  std::size_t capacity);

  /// Ends a feed; the last one ends the subscription, on the caller's
  /// thread (never on NATS's own).
  void close(const std::shared_ptr<event_feed>& feed);

  struct core;

private:
  nats_client& nats_;
  std::string prefix_;
  std::shared_ptr<core> core_;
};

/// One event as an SSE frame: `data: <json>\n\n` (a raw line break sent by
/// a rogue publisher cannot start a frame of its own).
std::string sse_frame(std::string_view event);

} // namespace troupe
