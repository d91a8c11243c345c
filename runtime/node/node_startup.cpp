#include "runtime/node/node_startup.hpp"
#include "runtime/nats/nats_subscription.hpp"

#include <thread>
#include <unistd.h>

#include <caf/atom.hpp>

#include "messages/heartbeat.hpp"

namespace troupe {

caf::actor_system_config& actor_config(caf::actor_system_config& cfg,
                                       const node_config& node) {
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  if (node.scheduler_threads > 0)
    cfg.set("scheduler.max-threads",
            static_cast<std::size_t>(node.scheduler_threads));
  auto policy = scheduler_policy(node, std::thread::hardware_concurrency());
  cfg.set("scheduler.policy",
          policy == "sharing" ? caf::atom("sharing") : caf::atom("stealing"));
  cfg.set("work-stealing.moderate-poll-attempts",
          static_cast<std::size_t>(node.scheduler_polls));
  return cfg;
}

/// Listens to heartbeats for a while: a live process already announcing
/// our node id means we must not start (two nodes with one id would fence
/// each other's leases and confuse every operator).
caf::error check_unique_node_id(nats_client& nats, const subjects& subj,
                                const std::string& node_id,
                                std::chrono::milliseconds listen) {
  auto sub = nats_sync_subscription::open(nats, subj.heartbeat());
  if (!sub)
    return sub.error();
  caf::error result;
  auto deadline = std::chrono::steady_clock::now() + listen;
  while (!result) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0)
      break;
    auto m = sub->next(left);
    if (!m)
      break;
    auto hb = decode_heartbeat(m->data());
    if (hb && hb->node_id == node_id && hb->state != "down")
      result = make_error(errc::internal,
                          "node id '" + node_id + "' is already in use by " +
                              hb->host + " pid " + std::to_string(hb->pid) +
                              "; give this node another --node-id");
  }
  return result;
}

std::string host_name() {
  char buf[256] = {0};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

} // namespace troupe
