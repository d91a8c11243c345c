#pragma once

// Start-up of a node (runtime/node/node.cpp): waiting a bounded time for
// dependencies that are not up yet, the actor system's configuration, and
// refusing to start twice with one node id.

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

#include <caf/actor_system_config.hpp>
#include <caf/error.hpp>
#include <spdlog/spdlog.h>

#include "config/config.hpp"
#include "messages/errc.hpp"
#include "runtime/common/shutdown.hpp"
#include "runtime/nats/nats_client.hpp"

namespace troupe {

/// Retries `f` with capped exponential backoff for at most `total`.
template <class F>
auto with_startup_retries(const char* what, duration_ms total,
                          const std::string& secrets, F f,
                          bool any_error = false) -> decltype(f()) {
  auto deadline = std::chrono::steady_clock::now() + total;
  auto delay = std::chrono::milliseconds{100};
  for (;;) {
    auto res = f();
    // Only an unreachable dependency is worth waiting for; anything else
    // (bad credentials, a failing migration) will not fix itself.
    if (res || std::chrono::steady_clock::now() >= deadline ||
        shutdown_requested() ||
        (!any_error && code_of(res.error()) != errc::unavailable))
      return res;
    spdlog::warn("{} not ready yet, retrying in {} ms: {}", what, delay.count(),
                 redact_text(describe(res.error()), secrets));
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds{2000});
  }
}

/// A JetStream call at start-up, retried like a dependency that is not up
/// yet (a JetStream cluster still electing its leader answers with errors
/// for a few seconds).
template <class F>
caf::error with_jetstream_retries(const troupe_config& cfg,
                                  const std::string& secrets, const char* what,
                                  F f) {
  auto ok = with_startup_retries(
      what, std::max(cfg.node.startup_timeout, duration_ms{30000}), secrets,
      [&]() -> caf::expected<bool> {
        if (auto err = f())
          return err;
        return true;
      },
      true);
  return ok ? caf::error{} : ok.error();
}

/// The CAF settings of a node: quiet CAF logging, threads and policy.
caf::actor_system_config& actor_config(caf::actor_system_config& cfg,
                                       const node_config& node);

/// Listens to heartbeats for `listen`: a live process already announcing
/// `node_id` means this one must not start.
caf::error check_unique_node_id(nats_client& nats, const subjects& subj,
                                const std::string& node_id,
                                std::chrono::milliseconds listen);

/// This machine's host name.
std::string host_name();

} // namespace troupe
