#pragma once

// Statements of the admin store (runtime/pg/admin_store.cpp) about child
// jobs and batches (docs/workflows.md).

namespace troupe::admin_sql {

// Cancelling a parent cancels every descendant that has not ended
// (docs/workflows.md); each gets a job.cancelled in the event log. The
// epoch bump fences out a run still going on.
inline const char* const sql_cancel_descendants = R"SQL(
with recursive d(job_id) as (
  select job_id from jobs where parent_id = $1::text
  union
  select c.job_id from jobs c join d on c.parent_id = d.job_id),
x as (
  update jobs set state = 'cancelled', epoch = epoch + 1,
    finished_at = now(), next_attempt_at = null, run_at = null,
    lease_owner = null, lease_until = null,
    last_error = 'cancelled with its parent ' || $1::text, updated_at = now()
  where job_id in (select job_id from d)
    and state not in ('succeeded', 'dead_lettered', 'cancelled')
  returning job_id, pipeline)
insert into job_events (job_id, type, time, node, body)
select job_id, 'job.cancelled', now(), $2::text, jsonb_build_object(
  'type', 'job.cancelled', 'job_id', job_id, 'pipeline', pipeline,
  'node', $2::text, 'error', 'cancelled with its parent ' || $1::text,
  'time_ms', (extract(epoch from now()) * 1000)::bigint)
from x
)SQL";

// A cancelled job may be its parent's last open child, or its batch's last
// open job.
inline const char* const sql_settle_family = R"SQL(
select troupe.resume_parents(array(select parent_id from jobs
    where job_id = $1 and parent_id is not null)),
  troupe.settle_batches(array(select batch_id from jobs
    where job_id = $1 and batch_id is not null))
)SQL";

} // namespace troupe::admin_sql
