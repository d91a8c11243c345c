#pragma once

// Admin requests over NATS for one node: `<prefix>.admin.<node_id>.<class>.
// <verb>`, `<prefix>.admin.all.<class>.<verb>` (every node answers; a client
// gathers the replies) and `<prefix>.admin.any.<class>.<verb>` (one node of
// the queue group `troupe_admin` answers: for cluster-wide questions that
// the system of record answers, such as `jobs` or `replay`). `read` verbs
// inspect, `control` verbs change state, so NATS permissions can make an
// operator read-only. Replies: `{"ok":true,"node":ID,"result":...}` or
// `{"ok":false,"node":ID,"error":{"code":...,"message":...}}`.
//
// Replies go only to inbox subjects: NATS checks a client's publish rights
// on the subject, never on the reply-to it names, so a viewer could
// otherwise make a node publish its answer to a control subject.
//
// The NATS callback copies the request and hands it to a worker thread,
// which may wait on actors (bounded by timeouts).

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>

#include "runtime/common/admin_failure.hpp"

#include <caf/error.hpp>
#include <nlohmann/json.hpp>

#include "runtime/nats/nats_client.hpp"

namespace troupe {

class blocking_pool;

/// One admin verb: takes the request body (JSON, may be null), returns the
/// result, or throws admin_failure (or std::runtime_error, code "failed").
using admin_verb = std::function<nlohmann::json(const nlohmann::json&)>;

class admin_bridge {
public:
  /// Replies go only to subjects under `inbox_prefix` (nats.inbox_prefix).
  admin_bridge(std::shared_ptr<nats_client> nats, std::string prefix,
               std::string node_id, std::shared_ptr<blocking_pool> workers,
               std::string inbox_prefix = "_INBOX");
  ~admin_bridge();

  admin_bridge(const admin_bridge&) = delete;
  admin_bridge& operator=(const admin_bridge&) = delete;

  /// Registers `read.<name>` before start().
  void add_read(const std::string& name, admin_verb fn);

  /// Registers `control.<name>` before start(). A control request acts only
  /// when its body is null or an object with no field outside `fields`, and
  /// only when it asks for a reply on an inbox: anything else (a JetStream
  /// publish ack, a forged reply-to aimed here) is refused unread.
  void add_control(const std::string& name, std::set<std::string> fields,
                   admin_verb fn);

  /// Subscribes to this node's, the `all` and the `any` subjects.
  caf::error start();

  /// Unsubscribes (idempotent).
  void stop();

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace troupe
