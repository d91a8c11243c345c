#include "actors/delivery_verdict.hpp"

namespace troupe {

delivery_verdict verdict_for(const job_result& res) noexcept {
  delivery_verdict v;
  switch (res.outcome) {
  case job_outcome::finished:
  case job_outcome::already_terminal:
  case job_outcome::waiting_in_store:
    v.action = delivery_action::ack;
    break;
  case job_outcome::same_message:
    v.action = delivery_action::replace_held;
    break;
  case job_outcome::conflict:
    v.action = delivery_action::ack;
    v.dropped = true;
    break;
  case job_outcome::unrecordable:
    v.action = delivery_action::term;
    v.dropped = true;
    break;
  case job_outcome::fenced:
  case job_outcome::parked:
    v.action = delivery_action::leave;
    break;
  case job_outcome::requeued:
    v.action = delivery_action::nak;
    v.nak_delay_ms = res.requeue_ms;
    break;
  case job_outcome::abandoned:
    v.action = delivery_action::nak;
    v.nak_delay_ms = abandoned_nak_delay_ms;
    break;
  }
  return v;
}

} // namespace troupe
