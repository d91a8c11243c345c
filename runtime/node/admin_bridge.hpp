#pragma once

// Admin requests over NATS for one node: `<prefix>.admin.<node_id>.<class>.
// <verb>`, `<prefix>.admin.all.<class>.<verb>` (every node answers; a client
// gathers the replies) and `<prefix>.admin.any.<class>.<verb>` (one node of
// the queue group `troupe_admin` answers: for cluster-wide questions that
// the system of record answers, such as `jobs` or `replay`). Replies:
// `{"ok":true,"node":ID,"result":...}` or
// `{"ok":false,"node":ID,"error":{"code":...,"message":...}}`.
//
// The bridge only translates: a subject becomes an `admin_call` for the
// node's admin actor (actors/admin_actor.hpp), which decides everything
// else, and the actor's answer is published to the request's reply subject
// by a relay actor on its own thread (a publish may block on a full socket).
//
// Replies go only to inbox subjects: NATS checks a client's publish rights
// on the subject, never on the reply-to it names, so a viewer could
// otherwise make a node publish its answer to a control subject.

#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/error.hpp>

#include "actors/admin_actor.hpp"
#include "runtime/nats/nats_client.hpp"

namespace troupe {

class admin_bridge {
public:
  /// Replies go only to subjects under `inbox_prefix` (nats.inbox_prefix).
  admin_bridge(std::shared_ptr<nats_client> nats, std::string prefix,
               std::string node_id, caf::actor_system& sys, admin_actor admin,
               std::string inbox_prefix = "_INBOX");
  ~admin_bridge();

  admin_bridge(const admin_bridge&) = delete;
  admin_bridge& operator=(const admin_bridge&) = delete;

  /// Subscribes to this node's, the `all` and the `any` subjects.
  caf::error start();

  /// Unsubscribes, then waits (at most a few seconds) until the requests
  /// already taken have their replies published. Idempotent.
  void stop();

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace troupe
