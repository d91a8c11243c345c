#pragma once

// The JSON shapes of the admin verbs that report live actor state: `nodes`,
// `stats` and `tree` (docs/wire-format.md). One place, so that the admin
// actor and the HTTP status endpoints cannot drift apart.

#include <nlohmann/json.hpp>

#include "messages/heartbeat.hpp"
#include "messages/stats.hpp"

namespace troupe {

/// A member of the cluster as one node sees it (`read.nodes`).
nlohmann::json member_json(const member& m);

/// A pipeline's counters on one node (`read.stats`).
nlohmann::json stats_json(const pipeline_stats& s, bool paused);

/// One job in the live supervision tree (`read.tree`), with its branches
/// when its stages run in parallel.
nlohmann::json brief_json(const job_brief& b);

/// The reply envelopes: `{"ok":true,"node":ID,"result":...}` and
/// `{"ok":false,"node":ID,"error":{"code":...,"message":...}}`.
nlohmann::json admin_ok(const std::string& node, nlohmann::json result);
nlohmann::json admin_error(const std::string& node, const std::string& code,
                           const std::string& message);

} // namespace troupe
