// Jobs this node gave up while its lease still holds them in the store: a
// claim whose commit was in doubt (the reply was lost, the row may say this
// node runs the job), or a job actor that crashed too often. No actor runs
// them here, yet every other node refuses their deliveries while this
// node's lease lives (docs/architecture.md, leases): each refusal costs an
// ack_wait, and only a delivery that happens to come back here would take
// the job. The supervisor asks the store to make such a job queued again
// (job_write::release), and holds back any new start of it here until the
// store has answered, so that the release cannot undo a newer run of ours.
#include "actors/pipeline_supervisor_internal.hpp"

#include <chrono>

#include "actors/delivery_verdict.hpp"

namespace troupe::supervisor_detail {

namespace {

/// How long a release may take before a new start of the job is let
/// through anyway (the store keeps a lost reply from blocking for good).
constexpr auto release_timeout = std::chrono::seconds{30};

} // namespace

void release_abandoned(self_ptr self, const std::string& job_id) {
  auto& st = self->state;
  if (!st.deps.job || !st.deps.job->store)
    return;
  if (!st.releasing.insert(job_id).second)
    return;
  job_write w;
  w.job_id = job_id;
  w.pipeline = st.pipe->config.name;
  w.release = true;
  auto forget = [self, job_id] { self->state.releasing.erase(job_id); };
  self->request(st.deps.job->store, release_timeout, std::move(w))
      .then([forget](ok_atom) { forget(); },
            [forget](const caf::error&) { forget(); });
}

bool turned_away_while_releasing(self_ptr self, const job_spec& spec,
                                 std::uint64_t delivery) {
  auto& st = self->state;
  if (st.releasing.count(spec.job_id) == 0)
    return false;
  job_result res;
  res.job_id = spec.job_id;
  res.outcome = job_outcome::requeued;
  res.requeue_ms = abandoned_nak_delay_ms;
  ++st.stats.skipped;
  if (st.deps.intake)
    caf::anon_send(st.deps.intake, finished_atom::value, delivery,
                   std::move(res));
  return true;
}

} // namespace troupe::supervisor_detail
