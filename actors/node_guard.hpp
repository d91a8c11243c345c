#pragma once

// Watches the node's own long-lived actors (the store, the event
// publisher, the cluster member, the pipeline supervisors). Job actors are
// restarted by their pipeline supervisor; these are not restarted in place:
// each owns state that the others hold handles to (in-flight writes, held
// deliveries, the member view), and a half-rebuilt node is worse than a
// fresh process. So the guard escalates: the node stops fetching, reports
// itself unhealthy, drains and exits with status 3, and its supervisor
// (systemd, Kubernetes) starts a clean process while JetStream hands the
// jobs it gave back to other nodes. This is OTP's one_for_all with a
// restart intensity of zero, the restart being the process's.
//
// Protocol:
//   (guard_watch_atom, std::string name, caf::actor who)  watch `who`
//   (guard_stand_down_atom)  the node is stopping: exits are expected now
//   (get_atom) -> std::vector<std::string>  names of actors that died

#include <functional>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/error.hpp>

namespace troupe {

using guard_watch_atom = caf::atom_constant<caf::atom("g_watch")>;
using guard_stand_down_atom = caf::atom_constant<caf::atom("g_standdn")>;

struct node_guard_deps {
  /// Called once per watched actor that dies before stand-down, on the
  /// guard's thread: keep it short (set a flag, log).
  std::function<void(const std::string& name, const caf::error& reason)>
      escalate;
};

caf::actor spawn_node_guard(caf::actor_system& sys, node_guard_deps deps);

} // namespace troupe
