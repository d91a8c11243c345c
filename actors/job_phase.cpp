#include "actors/job_phase.hpp"

namespace troupe {

namespace {

std::atomic<std::uint64_t> refused{0};

} // namespace

std::string_view to_string(job_phase x) noexcept {
  switch (x) {
  case job_phase::starting:
    return "starting";
  case job_phase::claiming:
    return "claiming";
  case job_phase::waiting_for_slot:
    return "waiting_for_slot";
  case job_phase::running:
    return "running";
  case job_phase::committing:
    return "committing";
  case job_phase::backing_off:
    return "backing_off";
  case job_phase::handing_to_store:
    return "handing_to_store";
  case job_phase::finishing:
    return "finishing";
  case job_phase::done:
    return "done";
  }
  return "starting";
}

bool may_enter(job_phase from, job_phase to) noexcept {
  using p = job_phase;
  if (from == p::done || to == p::starting)
    return false;
  // A run can be given up (abandon, fenced, unrecordable) from any phase.
  if (to == p::done)
    return true;
  switch (from) {
  case p::starting:
    // Claim, speculate (run at once) or record undecodable input.
    return to == p::claiming || attempt_alive(to) || to == p::finishing;
  case p::claiming:
    return attempt_alive(to) || to == p::finishing;
  case p::waiting_for_slot:
  case p::running:
    // Anything but a restart: an outcome (also one that arrives before a
    // queued attempt began), a cancel, a speculating job's next stage (no
    // commit in between), or `claiming` again when the job existed after
    // all (job_exists: what ran here is dropped).
    return true;
  case p::committing:
  case p::backing_off:
    return attempt_alive(to) || to == p::finishing || to == p::claiming;
  case p::handing_to_store:
    // A cancel (its write follows the wait's) ends it early; `claiming`
    // when the wait's write was to create the job and it existed.
    return to == p::finishing || to == p::claiming;
  case p::finishing:
    return to == p::finishing || to == p::claiming;
  case p::done:
    return false;
  }
  return false;
}

std::uint64_t refused_phase_transitions() noexcept {
  return refused.load(std::memory_order_relaxed);
}

void count_refused_phase_transition() noexcept {
  refused.fetch_add(1, std::memory_order_relaxed);
}

} // namespace troupe
