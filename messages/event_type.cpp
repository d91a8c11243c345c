#include "messages/event_type.hpp"

namespace troupe {

std::string_view to_string(event_type x) noexcept {
  switch (x) {
  case event_type::job_started:
    return "job.started";
  case event_type::stage_started:
    return "stage.started";
  case event_type::stage_succeeded:
    return "stage.succeeded";
  case event_type::stage_failed:
    return "stage.failed";
  case event_type::job_retrying:
    return "job.retrying";
  case event_type::job_succeeded:
    return "job.succeeded";
  case event_type::job_dead_lettered:
    return "job.dead_lettered";
  case event_type::job_cancelled:
    return "job.cancelled";
  case event_type::job_replayed:
    return "job.replayed";
  case event_type::stage_progress:
    return "stage.progress";
  case event_type::job_waiting:
    return "job.waiting";
  case event_type::job_spawned:
    return "job.spawned";
  }
  return "job.started";
}

bool from_string(std::string_view text, event_type& out) noexcept {
  static constexpr event_type all[] = {
      event_type::job_started,       event_type::stage_started,
      event_type::stage_succeeded,   event_type::stage_failed,
      event_type::job_retrying,      event_type::job_succeeded,
      event_type::job_dead_lettered, event_type::job_cancelled,
      event_type::job_replayed,      event_type::stage_progress,
      event_type::job_waiting,       event_type::job_spawned};
  for (auto x : all) {
    if (text == to_string(x)) {
      out = x;
      return true;
    }
  }
  return false;
}

std::optional<event_type> type_of(const job_event& ev) noexcept {
  event_type x;
  if (from_string(ev.type, x))
    return x;
  return std::nullopt;
}

} // namespace troupe
