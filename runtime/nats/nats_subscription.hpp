#pragma once

// Core NATS subscriptions with a C++ handler, owned like any other resource.
//
// nats.c calls a subscription's callback on its own thread and may still be
// delivering a message when Unsubscribe returns. The handler therefore lives
// in a heap block that nats.c frees through the subscription's on-complete
// callback, after its last delivery: a late message never touches freed
// memory, whatever owns the subscription. This replaces the keep-alive
// stanza every subscriber used to write by hand.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>
#include <nats/nats.h>

namespace troupe {

class nats_client;

/// A received message; owns the nats.c message and destroys it.
class nats_msg {
public:
  explicit nats_msg(natsMsg* m) noexcept : m_(m, natsMsg_Destroy) {}

  std::string_view subject() const;
  /// Empty when the sender expects no reply.
  std::string_view reply() const;
  std::string_view data() const;
  /// For the adapter code that reads headers or acks
  /// (runtime/nats/delivery.hpp).
  natsMsg* raw() const noexcept { return m_.get(); }

  // JetStream acknowledgements of a message from a pull consumer. The
  // asynchronous ones only queue the ack; ack_sync waits for the server.
  void ack() const { natsMsg_Ack(m_.get(), nullptr); }
  bool ack_sync() const;
  void nak(std::int64_t delay_ms = 0) const;
  void term() const { natsMsg_Term(m_.get(), nullptr); }
  void in_progress() const { natsMsg_InProgress(m_.get(), nullptr); }

private:
  std::unique_ptr<natsMsg, void (*)(natsMsg*)> m_;
};

struct subscribe_options {
  /// Queue group: one member of the group gets each message.
  std::string queue;
  /// Raise nats.c's pending limits so that a burst (thousands of events or
  /// replies) is not dropped as a slow consumer.
  bool unbounded_pending = false;
};

class nats_subscription {
public:
  /// Runs on nats.c's delivery thread: keep it short, never block on the
  /// actor system.
  using handler = std::function<void(nats_msg)>;

  nats_subscription() = default;
  nats_subscription(nats_subscription&& other) noexcept;
  nats_subscription& operator=(nats_subscription&& other) noexcept;
  nats_subscription(const nats_subscription&) = delete;
  nats_subscription& operator=(const nats_subscription&) = delete;
  /// Unsubscribes (see close()).
  ~nats_subscription();

  static caf::expected<nats_subscription>
  open(nats_client& nats, const std::string& subject, handler fn,
       const subscribe_options& opts = {});

  /// Opens one subscription per subject, all with `fn` and `opts`, and
  /// appends them to `out`; stops at the first failure.
  static caf::error open_each(nats_client& nats,
                              const std::vector<std::string>& subjects,
                              const handler& fn, const subscribe_options& opts,
                              std::vector<nats_subscription>& out);

  /// Stops the deliveries. With `drain_ms` > 0, messages the server has
  /// already sent are handled first (at most that long): requests that
  /// reached this node are answered, not dropped. Idempotent.
  void close(int drain_ms = 0);

  explicit operator bool() const noexcept { return sub_ != nullptr; }

private:
  natsSubscription* sub_ = nullptr;
  /// Its connection, for the round trip before it is freed (retire()).
  natsConnection* conn_ = nullptr;
};

/// A subscription read synchronously with next(): for short listens (start
/// up, the shell's `watch`) that want no callback thread.
class nats_sync_subscription {
public:
  nats_sync_subscription() = default;
  nats_sync_subscription(nats_sync_subscription&& other) noexcept;
  nats_sync_subscription& operator=(nats_sync_subscription&& other) noexcept;
  nats_sync_subscription(const nats_sync_subscription&) = delete;
  nats_sync_subscription& operator=(const nats_sync_subscription&) = delete;
  ~nats_sync_subscription();

  static caf::expected<nats_sync_subscription> open(nats_client& nats,
                                                    const std::string& subject);

  /// The next message within `timeout_ms`; nullopt on timeout or when the
  /// subscription is closed.
  std::optional<nats_msg> next(std::int64_t timeout_ms);

  void close();

private:
  natsSubscription* sub_ = nullptr;
  /// Its connection, for the round trip before it is freed (retire()).
  natsConnection* conn_ = nullptr;
};

/// A JetStream pull consumer bound to the durable consumer `durable` of
/// `stream`: an existing one (`existing`), or one created now for
/// `subject`.
class js_pull_consumer {
public:
  js_pull_consumer() = default;
  js_pull_consumer(js_pull_consumer&& other) noexcept;
  js_pull_consumer& operator=(js_pull_consumer&& other) noexcept;
  js_pull_consumer(const js_pull_consumer&) = delete;
  js_pull_consumer& operator=(const js_pull_consumer&) = delete;
  ~js_pull_consumer();

  static caf::expected<js_pull_consumer>
  bind(nats_client& nats, const std::string& stream, const std::string& subject,
       const std::string& durable, bool existing);

  /// Up to `batch` messages, waiting at most `timeout_ms`; empty when none
  /// arrived in time; an error when the fetch failed otherwise.
  caf::expected<std::vector<nats_msg>> fetch(int batch,
                                             std::int64_t timeout_ms);

  /// Up to `batch` messages the consumer holds now, without waiting for
  /// more (a no-wait pull request).
  caf::expected<std::vector<nats_msg>> fetch_now(int batch);

  /// Unsubscribes (the durable consumer stays on the server). Idempotent.
  void close();

  /// The subject its pull requests are answered on (nats.c's inbox), for
  /// tests and logs.
  std::string inbox() const;

private:
  natsSubscription* sub_ = nullptr;
  /// Its connection, for the round trip before it is freed (retire()).
  natsConnection* conn_ = nullptr;
};

} // namespace troupe
