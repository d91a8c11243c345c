#include "messages/job.hpp"

namespace troupe {

std::string to_string(job_state x) {
  switch (x) {
  case job_state::queued:
    return "queued";
  case job_state::running:
    return "running";
  case job_state::retrying:
    return "retrying";
  case job_state::succeeded:
    return "succeeded";
  case job_state::dead_lettered:
    return "dead_lettered";
  case job_state::cancelled:
    return "cancelled";
  case job_state::scheduled:
    return "scheduled";
  case job_state::waiting:
    return "waiting";
  }
  return "queued";
}

bool from_string(std::string_view text, job_state& out) noexcept {
  static constexpr job_state all[] = {
      job_state::queued,    job_state::running,       job_state::retrying,
      job_state::succeeded, job_state::dead_lettered, job_state::cancelled,
      job_state::scheduled, job_state::waiting};
  for (auto x : all) {
    if (text == to_string(x)) {
      out = x;
      return true;
    }
  }
  return false;
}

std::string to_string(job_outcome x) {
  switch (x) {
  case job_outcome::finished:
    return "finished";
  case job_outcome::already_terminal:
    return "already_terminal";
  case job_outcome::same_message:
    return "same_message";
  case job_outcome::parked:
    return "parked";
  case job_outcome::requeued:
    return "requeued";
  case job_outcome::abandoned:
    return "abandoned";
  case job_outcome::fenced:
    return "fenced";
  case job_outcome::conflict:
    return "conflict";
  case job_outcome::unrecordable:
    return "unrecordable";
  case job_outcome::waiting_in_store:
    return "waiting_in_store";
  }
  return "finished";
}

stage_outcome stage_success(std::string output_json) {
  stage_outcome r;
  r.ok = true;
  r.output = std::move(output_json);
  return r;
}

stage_outcome stage_failure(std::string code, std::string message,
                            bool retryable) {
  stage_outcome r;
  r.ok = false;
  r.output = "null";
  r.error_code = std::move(code);
  r.error_message = std::move(message);
  r.retryable = retryable;
  return r;
}

} // namespace troupe
