#pragma once

// A thin RAII layer over nats.c: one connection (with reconnects) and its
// JetStream context. natsStatus becomes caf::error here and nowhere else.
// NATS callbacks run on nats.c's own threads: code called from them copies
// what it needs and hands it on, it never blocks.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>
#include <nats/nats.h>

#include "runtime/nats/prompt_flusher.hpp"

#include "config/config.hpp"
#include "runtime/common/redact.hpp"

namespace troupe {

/// Converts a nats.c status (and the last error text) into a caf::error.
caf::error nats_error(natsStatus s, const std::string& what);

/// Splits "nats://a:1,nats://b:2" into URLs.
std::vector<std::string> split_urls(const std::string& urls);

/// True if `reply` is a concrete subject under `inbox_prefix` (`_INBOX`
/// by default): the only place a node publishes an answer to. Wildcards,
/// empty tokens and anything outside the prefix are refused.
bool is_inbox_subject(std::string_view reply, std::string_view inbox_prefix);

/// Connection state as seen by health checks and the intake.
struct nats_health {
  std::atomic<bool> connected{false};
  std::atomic<std::int64_t> reconnects{0};
  std::atomic<std::int64_t> disconnects{0};
  /// Set by close(): the disconnect that follows is not an outage.
  std::atomic<bool> closing{false};
};

/// How a client proves who it is, and TLS. Secrets are read from files or
/// the environment by the caller, never taken from a command line.
struct nats_auth {
  std::string user;
  std::string password;
  std::string token;
  /// NATS credentials file (JWT + nkey seed, `.creds`).
  std::string creds_file;
  /// TLS: CA bundle that signs the servers' certificates; client
  /// certificate and key when the servers verify clients.
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
};

/// Waits for nats.c's own threads (which deliver asynchronous callbacks) to
/// finish; call once at exit, after every connection is destroyed, so that
/// no callback runs while static objects (the logger) are torn down.
void close_nats_library();

/// The credentials and TLS files of a configuration's [nats] section.
inline nats_auth auth_from(const nats_config& c) {
  nats_auth a;
  a.user = c.user;
  a.password = c.password;
  a.token = c.token;
  a.creds_file = c.creds;
  a.tls_ca = c.tls_ca;
  a.tls_cert = c.tls_cert;
  a.tls_key = c.tls_key;
  return a;
}

/// Options for connect().
struct nats_connect_options {
  std::string urls;
  nats_auth auth;
  std::string name = "troupe";
  /// Keep trying to connect at start-up (with reconnect wait) instead of
  /// failing at once.
  bool retry_on_failed_connect = false;
  std::int64_t connect_timeout_ms = 2000;
  /// natsOptions_SetSendAsap: flush on every publish (see nats.send_asap).
  bool send_asap = false;
  /// First token of this client's reply subjects (nats.inbox_prefix; the
  /// shell's --inbox-prefix or TROUPE_NATS_INBOX_PREFIX).
  std::string inbox_prefix = "_INBOX";
};

/// An owned NATS connection plus its JetStream context.
/// One message of a batch publish (nats_client::js_publish_batch).
struct js_outgoing {
  std::string subject;
  std::string data;
  /// Nats-Msg-Id: unique within the batch (acks are matched by it).
  std::string msg_id;
  std::vector<std::pair<std::string, std::string>> headers;
};

class nats_client {
public:
  ~nats_client();
  nats_client(const nats_client&) = delete;
  nats_client& operator=(const nats_client&) = delete;

  /// Connects; reconnects forever afterwards.
  static caf::expected<std::shared_ptr<nats_client>>
  connect(const nats_connect_options& opts);

  natsConnection* conn() const noexcept { return conn_; }
  jsCtx* js() const noexcept { return js_; }
  const nats_health& health() const noexcept { return *health_; }
  /// Round-trip time to the server in microseconds (a PING), or an error
  /// when disconnected.
  caf::expected<std::int64_t> rtt_us() const;

  /// First token of the reply subjects this client creates.
  const std::string& inbox_prefix() const noexcept { return inbox_prefix_; }

  /// Publishes on core NATS (buffered, non-blocking).
  caf::error publish(const std::string& subject, const std::string& data);

  /// Publishes to JetStream and waits for the stream's ack. `msg_id` sets
  /// Nats-Msg-Id (de-duplication) when non-empty. Returns the stream
  /// sequence; a duplicate returns the original sequence.
  caf::expected<std::uint64_t> js_publish(const std::string& subject,
                                          const std::string& data,
                                          const std::string& msg_id,
                                          std::int64_t timeout_ms = 5000,
                                          bool* duplicate = nullptr);

  /// The subject of the stream's message `seq` ("" if it is gone: a
  /// work-queue stream deletes acked messages).
  std::string stored_subject(const std::string& stream, std::uint64_t seq);

  /// Like js_publish, with a `Troupe-Job-Id` header naming the job when it
  /// differs from the message id (replays).
  caf::expected<std::uint64_t> js_publish_job(const std::string& subject,
                                              const std::string& data,
                                              const std::string& msg_id,
                                              const std::string& job_id,
                                              std::int64_t timeout_ms = 5000);

  /// Like js_publish, with headers (name, value) on the message.
  caf::expected<std::uint64_t> js_publish_headers(
      const std::string& subject, const std::string& data,
      const std::string& msg_id,
      const std::vector<std::pair<std::string, std::string>>& headers,
      std::int64_t timeout_ms = 5000, bool* duplicate = nullptr);

  /// Publishes every message of `msgs` to JetStream at once and waits (at
  /// most `timeout_ms`) for the stream's acks: the stream sequence of each
  /// one stored, 0 for one not acknowledged. A message whose ack did not
  /// come may still be stored; publishing it again with the same id is
  /// then dropped by the duplicate window.
  std::vector<std::uint64_t>
  js_publish_batch(const std::vector<js_outgoing>& msgs,
                   std::int64_t timeout_ms = 5000);

  /// Request/reply on core NATS.
  /// Publishes `data` on `subject` asking for replies on `reply`.
  caf::error publish_request(const std::string& subject,
                             const std::string& reply, const std::string& data);

  /// The server's last refusal of a publish or subscribe for lack of
  /// permission (its text names the subject), or "" if the last error was
  /// something else. Flush first to be sure a refusal has arrived.
  std::string last_permission_error() const;

  /// Subjects of `stream` matching `filter` that hold messages, with their
  /// message counts.
  caf::expected<std::vector<std::pair<std::string, std::uint64_t>>>
  stream_subjects(const std::string& stream, const std::string& filter);

  /// Whether the consumer `name` of `stream` exists: false only when the
  /// broker says it does not; an error when it cannot tell (no reply, no
  /// leader), which must never be taken for "absent".
  caf::expected<bool> consumer_exists(const std::string& stream,
                                      const std::string& name);

  /// Deletes the consumer `name` of `stream` (nothing if it is gone).
  void delete_consumer(const std::string& stream, const std::string& name);

  caf::expected<std::string> request(const std::string& subject,
                                     const std::string& data,
                                     std::int64_t timeout_ms);

  /// Flushes buffered publishes (bounded wait).
  caf::error flush(std::int64_t timeout_ms = 2000);

  /// Writes what is buffered soon, without waiting here nor for nats.c's
  /// flusher tick: after a publish someone is waiting on (prompt_flusher).
  void flush_soon();

  /// Prompt flushes done so far (0 before the first flush_soon); for
  /// tests. Not after close().
  std::uint64_t prompt_flushes() const noexcept;

  /// Creates or updates the jobs stream.
  caf::error ensure_stream(const nats_config& cfg);

  /// Creates or updates the durable pull consumer of one pipeline (of its
  /// high-priority band with `high`); `max_ack_pending` from
  /// consumer_max_ack_pending().
  caf::error ensure_consumer(const nats_config& cfg,
                             const std::string& pipeline,
                             std::int64_t max_ack_pending, bool high = false);

  /// Number of messages of a pipeline's consumer not yet delivered.
  caf::expected<std::int64_t> consumer_pending(const nats_config& cfg,
                                               const std::string& pipeline);

  /// Closes the connection (idempotent).
  void close();

private:
  nats_client() = default;

  natsConnection* conn_ = nullptr;
  jsCtx* js_ = nullptr;
  /// js_publish_batch's context (its ack handler), one batch at a time.
  std::mutex batch_mtx_;
  jsCtx* batch_js_ = nullptr;
  std::string inbox_prefix_ = "_INBOX";
  /// Made on the first flush_soon(): most clients never need its thread.
  std::once_flag prompt_once_;
  std::unique_ptr<prompt_flusher> prompt_;
  std::atomic<bool> prompt_made_{false};
  std::shared_ptr<nats_health> health_ = std::make_shared<nats_health>();
};

/// A pipeline consumer's MaxAckPending: never below what its node holds
/// (four times max_in_flight), and high enough for a cluster of nodes.
inline std::int64_t consumer_max_ack_pending(int max_in_flight) {
  return std::max<std::int64_t>(20000, std::int64_t{max_in_flight} * 4);
}

/// A job id as the last part of an event subject. Job ids are free text,
/// but a subject may not hold whitespace, control characters, `*` or `>`,
/// nor an empty token: those become `_` (a space in a subject broke the
/// node's whole NATS connection). The event's body keeps the exact id.
std::string subject_tail(const std::string& job_id);

/// Subject names derived from the configured prefix.
struct subjects {
  std::string prefix;

  std::string jobs(const std::string& pipeline) const {
    return prefix + ".jobs." + pipeline;
  }
  std::string jobs_wildcard() const { return prefix + ".jobs.>"; }
  std::string submit() const { return prefix + ".api.v1.submit"; }
  /// `<prefix>.api.v1.<verb>` (submit, status, wait).
  std::string api(const std::string& verb) const {
    return prefix + ".api.v1." + verb;
  }
  std::string events(const std::string& pipeline,
                     const std::string& job_id) const {
    return prefix + ".events." + pipeline + "." + subject_tail(job_id);
  }
  std::string dlq(const std::string& pipeline) const {
    return prefix + ".dlq." + pipeline;
  }
  std::string heartbeat() const { return prefix + ".cluster.heartbeat"; }
  /// Where a callback stage's requests go unless it names a subject.
  std::string callbacks(const std::string& pipeline,
                        const std::string& stage) const {
    return prefix + ".callbacks." + pipeline + "." + stage;
  }
  std::string consumer(const std::string& pipeline) const {
    return "troupe_" + pipeline;
  }
  /// A pipeline's high-priority band (`[pipelines.<name>] priorities`).
  std::string jobs_high(const std::string& pipeline) const {
    return jobs(pipeline) + ".high";
  }
  std::string consumer_high(const std::string& pipeline) const {
    return consumer(pipeline) + "_high";
  }
};

} // namespace troupe
