#pragma once

// A node's admin endpoint as an actor: the design card's "admin actor".
// Every admin request of the node (runtime/node/admin_bridge.hpp only turns
// NATS subjects into `admin_call`s and publishes the replies) arrives here:
//
//   admin_call -> std::string   the reply, `{"ok":true,"node":ID,
//                               "result":...}` or `{"ok":false,"node":ID,
//                               "error":{"code":...,"message":...}}`
//
// The actor routes and checks each call (actors/admin_verbs.hpp), answers
// the live verbs itself by asking the node's actors with a deadline
// (`tree`, `stats`, `cancel_local` and `retry_local` fan out to every
// pipeline supervisor; `nodes` asks the cluster member), and hands the
// blocking verbs (PostgreSQL queries, cluster-wide fan-out over NATS) to a
// worker pool, whose result comes back as `admin_done`. It never blocks a
// scheduler thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/typed_actor.hpp>

#include "actors/admin_verbs.hpp"
#include "actors/atoms.hpp"
#include "messages/admin_call.hpp"

namespace troupe {

/// worker -> admin actor: (id, reply) a blocking verb finished.
using admin_done_atom = caf::atom_constant<caf::atom("admin_done")>;

using admin_actor = caf::typed_actor<
    caf::replies_to<admin_call>::with<std::string>,
    caf::reacts_to<admin_done_atom, std::uint64_t, std::string>>;

/// Runs blocking work off the scheduler; false when it cannot take more
/// (the request is then refused as `unavailable`, so a flood sheds load).
using admin_executor = std::function<bool(std::function<void()>)>;

struct admin_actor_deps {
  std::string node_id;
  std::shared_ptr<const admin_verb_table> verbs;
  /// For requests to this node and to `all`.
  admin_executor workers;
  /// For requests to `any`: their verbs fan out to every node, this one
  /// included, so they must never wait for a thread the fan-out needs.
  admin_executor any_workers;
  /// The pipeline supervisors, in the order of the configuration.
  std::vector<std::pair<std::string, caf::actor>> supervisors;
  caf::actor member;
  /// Whether this node's intake of a pipeline is paused right now.
  std::function<bool(const std::string&)> intake_paused;
  std::chrono::milliseconds tree_timeout{3000};
  std::chrono::milliseconds ask_timeout{2000};
};

/// Registers the verbs the admin actor answers itself: `read.tree`,
/// `read.nodes`, `read.stats`, `control.cancel_local`, `control.retry_local`.
void add_live_admin_verbs(admin_verb_table& table);

admin_actor spawn_admin_actor(caf::actor_system& sys, admin_actor_deps deps);

} // namespace troupe
