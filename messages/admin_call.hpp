#pragma once

// One admin request as the admin actor sees it (actors/admin_actor.hpp): the
// parts of its NATS subject `<prefix>.admin.<target>.<class>.<verb>` and its
// raw body. The NATS bridge (runtime/node/admin_bridge.hpp) only splits the
// subject; every check of class, verb and body happens in the actor, so a
// test can send the same request without a server.

#include <string>

#include <caf/meta/type_name.hpp>

namespace troupe {

struct admin_call {
  /// A node id, "all" or "any" (which decides the worker pool it runs on).
  std::string target;
  /// "read" or "control"; anything else is refused.
  std::string cls;
  std::string verb;
  /// The request body as received: untrusted, possibly empty.
  std::string body;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_call& x) {
  return f(caf::meta::type_name("admin_call"), x.target, x.cls, x.verb, x.body);
}

} // namespace troupe
