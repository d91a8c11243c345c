#pragma once

// The live feed of the HTTP API (`GET /api/v1/events`, Server-Sent Events):
// one NATS subscription per open feed to the events subject, and a bounded
// queue between NATS's thread and the HTTP thread that writes the stream.
// Events are best effort (docs/decisions.md): a feed that falls behind
// drops its oldest events and says how many.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "runtime/nats/nats_client.hpp"
#include "runtime/nats/nats_subscription.hpp"

namespace troupe {

class event_feed {
public:
  /// Subscribes to `subject` (e.g. `troupe.events.>`), keeping at most
  /// `capacity` undelivered events.
  static caf::expected<std::shared_ptr<event_feed>>
  open(nats_client& nats, const std::string& subject, std::size_t capacity);

  /// The events that arrived, waiting at most `wait` for the first.
  std::vector<std::string> take(std::chrono::milliseconds wait);

  /// Events dropped because the reader fell behind.
  std::int64_t dropped() const;

  /// Wakes a waiting take() (the node is stopping).
  void wake();

  /// Ends the subscription, on the caller's thread (never on NATS's own,
  /// where the feed's last owner could otherwise end up destroying it).
  void close();

private:
  void push(std::string event);

  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::size_t capacity_ = 0;
  std::int64_t dropped_ = 0;
  bool woken_ = false;
  nats_subscription sub_;
};

/// One event as an SSE frame: `data: <json>\n\n` (a raw line break sent by
/// a rogue publisher cannot start a frame of its own).
std::string sse_frame(const std::string& event);

} // namespace troupe
