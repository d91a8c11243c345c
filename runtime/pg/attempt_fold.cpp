#include "runtime/pg/attempt_fold.hpp"

namespace troupe {

namespace {

bool holds(const checkpoint& cp, const attempt_record& a) {
  return a.ok && a.stage_index == cp.stage_index && a.attempt == cp.attempts &&
         a.stage == cp.stage && a.duration_ms == cp.duration_ms &&
         a.error_code.empty() && a.error_message.empty() && a.life > 0;
}

} // namespace

const attempt_record* folded_attempt(const job_write& w, const checkpoint& cp) {
  // A write carries a handful of each, so a scan is cheapest.
  for (const auto& a : w.attempts)
    if (holds(cp, a))
      return &a;
  return nullptr;
}

bool is_folded(const job_write& w, const attempt_record& a) {
  for (const auto& cp : w.checkpoints)
    if (folded_attempt(w, cp) == &a)
      return true;
  return false;
}

} // namespace troupe
