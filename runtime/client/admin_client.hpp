#pragma once

// The client side of the admin subjects (docs/wire-format.md), as any outside
// program would speak them: used by `troupe shell` and by nodes that fan a
// request out to every node (cancel, pause).

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/nats/nats_client.hpp"

namespace troupe {

/// Publishes `body` to `subject` (normally `<prefix>.admin.all...`) and
/// gathers the JSON replies that arrive within `wait`; returns as soon as
/// `expect` replies arrived when `expect` > 0, or as soon as one reply
/// satisfies `enough` (if given). Never waits longer than
/// `wait`: a node that does not answer is simply missing from the result.
std::vector<nlohmann::json>
admin_gather(nats_client& nats, const std::string& subject,
             const std::string& body, std::chrono::milliseconds wait,
             std::size_t expect = 0,
             const std::function<bool(const nlohmann::json&)>& enough = {});

/// One request to `<prefix>.admin.<node|any>...`; the parsed reply, or a
/// reply-shaped error (`{"ok":false,"error":{"code":"no_answer",...}}`) when
/// nobody answered within `wait`.
nlohmann::json admin_request(nats_client& nats, const std::string& subject,
                             const nlohmann::json& body,
                             std::chrono::milliseconds wait);

} // namespace troupe
