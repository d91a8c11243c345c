#include "actors/stage_actor.hpp"

#include <exception>
#include <stdexcept>

#include "actors/atoms.hpp"
#include "messages/errc.hpp"

namespace troupe {

namespace {

std::string what_of(const std::exception_ptr& eptr) {
  try {
    std::rethrow_exception(eptr);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

} // namespace

caf::behavior stage_actor(caf::event_based_actor* self, caf::actor job,
                          std::int64_t attempt_seq,
                          std::shared_ptr<const stage_kind> kind,
                          stage_request req) {
  // Exceptions from later handlers (e.g. a kind's delayed callback): report
  // them as a failed attempt, then terminate.
  self->set_exception_handler(
      [self, job, attempt_seq](std::exception_ptr& eptr) -> caf::error {
        auto msg = what_of(eptr);
        self->send(job, attempt_seq,
                   stage_failure("exception", "stage threw: " + msg));
        return make_error(errc::internal, "stage threw: " + msg);
      });
  // An attempt never outlives its job actor: when the job dies (crash,
  // shutdown), the attempt is abandoned and its cleanup (e.g. killing an
  // exec child) runs.
  self->monitor(job);
  self->set_down_handler([self](caf::down_msg& dm) {
    self->quit(dm.reason ? dm.reason : caf::exit_reason::user_shutdown);
  });
  try {
    kind->start(self, req);
  } catch (...) {
    auto msg = what_of(std::current_exception());
    self->send(job, attempt_seq,
               stage_failure("exception", "stage threw: " + msg));
    self->quit();
    return {};
  }
  return {
      [self, job, attempt_seq](stage_outcome& out) {
        self->send(job, attempt_seq, std::move(out));
        self->quit();
      },
      [self, job, attempt_seq](started_atom) {
        self->send(job, started_atom::value, attempt_seq);
      },
      [job, attempt_seq](progress_atom, std::string& report) {
        caf::anon_send(job, progress_atom::value, attempt_seq,
                       std::move(report));
      },
  };
}

} // namespace troupe
