#pragma once

// Cron schedules in the store (docs/scheduling.md). Every node registers
// the schedules of its configuration at start and fires due slots from its
// scheduler thread; a slot's job id is `<schedule>@<slot, unix seconds>`,
// so each slot has exactly one job across the cluster, whichever node
// fires it. Blocking; one thread.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "config/config.hpp"

namespace troupe {

class lazy_connection;

class cron_store {
public:
  cron_store(std::string pg_url, std::string node_id);
  ~cron_store();
  cron_store(const cron_store&) = delete;
  cron_store& operator=(const cron_store&) = delete;

  /// Writes these definitions (the last node to start wins); a schedule
  /// whose expression or zone changed fires from its next slot. A schedule
  /// no configuration has any more stays until an operator deletes it
  /// (`schedule delete NAME`): a node cannot know whether others still
  /// have it.
  caf::error
  register_schedules(const std::map<std::string, schedule_config>& schedules);

  /// Fires the due slots of every schedule (per its catch_up and overlap)
  /// as `scheduled` jobs due now. Returns how many jobs it created.
  caf::expected<std::size_t> fire_due();

  /// Time until the next slot of any schedule (nullopt: none).
  caf::expected<std::optional<duration_ms>> next_slot();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace troupe
