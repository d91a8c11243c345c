#pragma once

// The statements of the store's group commit (runtime/pg/pg_store.cpp). Each
// takes a batch as one JSON record set ($1), so a batch is a handful of
// statements whatever its size. Every lookup is by primary key; see the
// planner note in run_batch. The record sets are read as `json`, not
// `jsonb`: they are read once, and converting 20,000 create records to
// jsonb first took twice as long (189-204 vs 88-96 ms, docs/benchmarks.md,
// session 25).

namespace troupe::pg_sql {

// A claim takes a live job only for its own pipeline (a publisher allowed
// one pipeline must not run another's jobs), a replay (life > 0) only in
// the life the store started for it, and no job that waits in the store
// for its time (run_at set: only the scheduler publishes it) or that the
// scheduler has published since this message (gen: a stale message of a
// rescued job changes nothing; a replay, which names its life, is not
// stale). A claim never changes gen. A client's message (generation 0) of a
// job created from another message (stream_seq) is a second publication of
// the key, past JetStream's duplicate window: the job is not taken from
// the run that holds it. Nor is a job another process holds under a live
// lease (its node's row in node_leases, or a lease of the job's own):
// PostgreSQL decides who runs it, not the broker's redelivery. A message
// comes again while its holder lives after an outage longer than ack_wait,
// a node cut from NATS but not from PostgreSQL, or a consumer made again
// (runtime/node/stranded_sweeper.hpp); taking the job then ran its stage a
// second time. A holder that dies stops renewing its lease, and then the
// next delivery takes the job (or the scheduler's rescue publishes it).
inline const char* const sql_claim = R"SQL(
with x as (
  select * from json_to_recordset($1::json) as r(job_id text, pipeline text,
    tenant text, correlation_id text, priority int, payload text, life int,
    gen int, traceparent text, tracestate text, seq bigint))
insert into jobs as j (job_id, pipeline, tenant, correlation_id, priority,
  state, payload, epoch, lease_owner, lease_until, started_at, life, gen,
  traceparent, tracestate, stream_seq)
select job_id, pipeline, coalesce(tenant, ''), coalesce(correlation_id, ''),
  coalesce(priority, 0), 'running', payload::jsonb, 1, $2, null, now(),
  greatest(coalesce(life, 0), 1), coalesce(gen, 0),
  coalesce(traceparent, ''), coalesce(tracestate, ''), nullif(seq, 0)
from x
on conflict (job_id) do update set
  epoch = j.epoch + 1, state = 'running', lease_owner = excluded.lease_owner,
  lease_until = null,
  started_at = coalesce(j.started_at, now()), updated_at = now()
  where j.state not in ('succeeded', 'dead_lettered', 'cancelled')
    and j.pipeline = excluded.pipeline
    and (excluded.life = 1 or j.life = excluded.life)
    and j.run_at is null and j.state <> 'waiting'
    and (excluded.gen >= j.gen or (excluded.life > 1 and j.life = excluded.life))
    and not (excluded.gen = 0 and j.gen = 0 and excluded.life = 1
      and excluded.stream_seq is not null and j.stream_seq is not null
      and excluded.stream_seq <> j.stream_seq)
    and not (j.state in ('running', 'retrying')
      and j.lease_owner is distinct from excluded.lease_owner
      and (coalesce(j.lease_until > now(), false) or exists (select 1
        from node_leases n where n.owner = j.lease_owner
          and n.until > now())))
returning j.job_id, j.epoch, j.life, j.start_stage, (j.xmax::text = '0'),
  case when j.xmax::text = '0' then null else j.payload::text end,
  j.tenant, j.correlation_id, j.priority, j.pipeline, j.progress::text,
  j.callback::text, j.traceparent, j.tracestate, j.parent_id, j.batch_id,
  -- A parent resumed from its wait reads every child's outcome, in order.
  case when j.children is not null then (j.children || jsonb_build_object(
    'results', (select coalesce(jsonb_agg(jsonb_build_object(
        'job_id', c.job_id, 'pipeline', c.pipeline, 'state', c.state,
        'result', c.result, 'error', c.last_error) order by c.child_index),
        '[]'::jsonb)
      from jobs c where c.parent_id = j.job_id
        and c.parent_stage = (j.children->>'stage_index')::int)))::text end
)SQL";

inline const char* const sql_states = R"SQL(
select job_id, state, epoch, life, pipeline,
  run_at is not null or state = 'waiting', gen, coalesce(stream_seq, 0),
  state in ('running', 'retrying') and lease_owner is distinct from $2
    and (coalesce(lease_until > now(), false) or exists (select 1
      from node_leases n where n.owner = jobs.lease_owner
        and n.until > now())),
  coalesce(lease_owner, '')
from jobs where job_id = any(array(select json_array_elements_text($1::json)))
)SQL";

inline const char* const sql_checkpoints = R"SQL(
select job_id, stage_index, stage, output::text, attempts, duration_ms,
  (extract(epoch from finished_at) * 1000)::bigint
from stage_checkpoints
where job_id = any(array(select json_array_elements_text($1::json)))
order by job_id, stage_index
)SQL";

inline const char* const sql_attempts = R"SQL(
select job_id, life, stage_index, attempt, stage, node, ok,
  coalesce(error_code, ''), coalesce(error_message, ''),
  (extract(epoch from started_at) * 1000)::bigint, duration_ms
from job_attempts
where job_id = any(array(select json_array_elements_text($1::json)))
order by job_id, life, stage_index, attempt
)SQL";

inline const char* const sql_update = R"SQL(
with w as (
  select * from json_to_recordset($1::json) as r(job_id text, epoch bigint,
    state text, stage_index int, attempt int, next_ms bigint,
    wait_ms bigint, last_error text, result text, wait boolean,
    progress text, callback text, since_ms bigint, children text))
update jobs j set
  state = w.state, stage_index = w.stage_index, attempt = w.attempt,
  next_attempt_at = case when w.next_ms > 0
    then now() + w.wait_ms * interval '1 millisecond' end,
  run_at = case when w.wait
    then now() + w.wait_ms * interval '1 millisecond' end,
  last_error = coalesce(nullif(w.last_error, ''), j.last_error),
  result = case when coalesce(w.result, '') <> '' then w.result::jsonb
    else j.result end,
  progress = case when coalesce(w.progress, '') <> '' then w.progress::jsonb
    else j.progress end,
  callback = case when w.state = 'waiting' then jsonb_build_object(
      'hash', w.callback, 'stage_index', w.stage_index, 'life', j.life,
      'attempt', w.attempt, 'since_ms', w.since_ms, 'deadline_ms', w.next_ms)
    -- A completion is read by the claim after it; once the job has moved
    -- past that stage (or ended) its output is in the checkpoint: drop it.
    when j.callback ? 'completion' and (w.state in ('succeeded',
      'dead_lettered', 'cancelled')
      or w.stage_index <> (j.callback->>'stage_index')::int)
    then j.callback - 'completion'
    else j.callback end,
  -- A wait for children is kept until the job moves past its stage.
  children = case when coalesce(w.children, '') <> '' then w.children::jsonb
    when j.children is not null and (w.state in ('succeeded',
      'dead_lettered', 'cancelled')
      or w.stage_index <> (j.children->>'stage_index')::int) then null
    else j.children end,
  finished_at = case when w.state in ('succeeded', 'dead_lettered',
    'cancelled') then now() end,
  -- Held under the node's lease (node_leases), never one of the job's own.
  lease_until = null,
  updated_at = now()
from w
where j.job_id = w.job_id and j.epoch = w.epoch
returning j.job_id
)SQL";

// Creates jobs that ran before their claim (job_deps::speculate) with their
// outcome: one row written once instead of a claim and an update per stage.
// A job that exists already is left alone (not returned): its writer claims
// it instead.
inline const char* const sql_create = R"SQL(
with w as (
  select * from json_to_recordset($1::json) as r(job_id text, pipeline text,
    tenant text, correlation_id text, priority int, payload text, state text,
    stage_index int, attempt int, next_ms bigint, wait_ms bigint,
    last_error text,
    result text, started_ms bigint, wait boolean, callback text,
    since_ms bigint, progress text, traceparent text, tracestate text,
    children text, seq bigint))
insert into jobs as j (job_id, pipeline, tenant, correlation_id, priority,
  state, stage_index, attempt, epoch, payload, result, last_error,
  started_at, finished_at, next_attempt_at, run_at, lease_owner, lease_until,
  callback, progress, traceparent, tracestate, children, stream_seq)
select job_id, pipeline, coalesce(tenant, ''), coalesce(correlation_id, ''),
  coalesce(priority, 0), state, stage_index, attempt, 1, payload::jsonb,
  case when coalesce(result, '') <> '' then result::jsonb end,
  nullif(last_error, ''),
  case when started_ms > 0 then to_timestamp(started_ms / 1000.0) end,
  case when state in ('succeeded', 'dead_lettered', 'cancelled')
    then now() end,
  case when next_ms > 0 and not wait
    then now() + wait_ms * interval '1 millisecond' end,
  case when wait then now() + wait_ms * interval '1 millisecond' end,
  case when wait or state in ('succeeded', 'dead_lettered', 'cancelled',
    'waiting') then null else $2 end,
  null,
  case when state = 'waiting' then jsonb_build_object(
      'hash', callback, 'stage_index', stage_index, 'life', 1,
      'attempt', attempt, 'since_ms', since_ms, 'deadline_ms', next_ms) end,
  case when coalesce(progress, '') <> '' then progress::jsonb end,
  coalesce(traceparent, ''), coalesce(tracestate, ''),
  case when coalesce(children, '') <> '' then children::jsonb end,
  -- The message a job was created from (not for one that waits in the
  -- store: the scheduler's publication names its own).
  case when not coalesce(wait, false) then nullif(seq, 0) end
from w
on conflict (job_id) do nothing
returning job_id
)SQL";

// A checkpoint may hold its stage's successful attempt (life > 0; see
// runtime/pg/attempt_fold.hpp). A checkpoint written again for another
// attempt (a stage that succeeded twice) first moves the attempt the old
// one holds to stage_attempts, so the history keeps both.
inline const char* const sql_insert_checkpoints = R"SQL(
with r as (
  select job_id, stage_index, stage, output, attempts, duration_ms,
    finished_ms, nullif(life, 0) as life, node, started_ms
  from json_to_recordset($1::json) as r(job_id text, stage_index int,
    stage text, output text, attempts int, duration_ms bigint,
    finished_ms bigint, life int, node text, started_ms bigint)),
moved as (
  insert into stage_attempts (job_id, life, stage_index, attempt, stage, node,
    ok, started_at, duration_ms)
  select c.job_id, c.life, c.stage_index, c.attempts, c.stage, c.node, true,
    c.started_at, c.duration_ms
  from stage_checkpoints c join r using (job_id, stage_index)
  where c.life is not null
    and (r.life, r.attempts) is distinct from (c.life, c.attempts)
  on conflict do nothing)
insert into stage_checkpoints (job_id, stage_index, stage, output, attempts,
  duration_ms, finished_at, life, node, started_at)
select job_id, stage_index, stage, output::jsonb, attempts, duration_ms,
  to_timestamp(finished_ms / 1000.0), life,
  case when life is not null then node end,
  case when life is not null then to_timestamp(started_ms / 1000.0) end
from r
on conflict (job_id, stage_index) do update set stage = excluded.stage,
  output = excluded.output, attempts = excluded.attempts,
  duration_ms = excluded.duration_ms, finished_at = excluded.finished_at,
  life = excluded.life, node = excluded.node, started_at = excluded.started_at
)SQL";

// Attempts no checkpoint holds.
inline const char* const sql_insert_attempts = R"SQL(
insert into stage_attempts (job_id, life, stage_index, attempt, stage, node, ok,
  error_code, error_message, started_at, duration_ms)
select job_id, life, stage_index, attempt, stage, node, ok,
  nullif(error_code, ''), nullif(error_message, ''),
  to_timestamp(started_ms / 1000.0), duration_ms
from json_to_recordset($1::json) as r(job_id text, life int,
  stage_index int, attempt int, stage text, node text, ok boolean,
  error_code text, error_message text, started_ms bigint, duration_ms bigint)
on conflict do nothing
)SQL";

// A job its node gave up (job_write::release) while its lease holds it:
// queued again, so that the next delivery anywhere claims it. A job another
// run took meanwhile, or one the store holds (run_at), is not this node's.
inline const char* const sql_release = R"SQL(
update jobs set state = 'queued', epoch = epoch + 1, lease_owner = null,
  lease_until = null, updated_at = now()
where job_id = any(array(select json_array_elements_text($1::json)))
  and lease_owner = $2 and state in ('running', 'retrying') and run_at is null
)SQL";

inline const char* const sql_insert_events = R"SQL(
insert into job_events (job_id, type, time, node, stage, attempt, body)
select job_id, type, to_timestamp(time_ms / 1000.0), node,
  nullif(stage, ''), nullif(attempt, 0), body::jsonb
from json_to_recordset($1::json) as r(job_id text, type text,
  time_ms bigint, node text, stage text, attempt int, body text)
)SQL";

inline const char* const sql_dead_letters = R"SQL(
insert into dead_letters (job_id, pipeline, failed_stage, stage, last_error,
  attempts, dead_at)
select j.job_id, j.pipeline, j.stage_index,
  (select a.stage from job_attempts a where a.job_id = j.job_id
     and a.stage_index = j.stage_index
   order by a.life desc, a.attempt desc limit 1),
  j.last_error,
  coalesce((select jsonb_agg(jsonb_build_object(
      'life', a.life, 'stage_index', a.stage_index, 'stage', a.stage,
      'attempt', a.attempt, 'node', a.node, 'ok', a.ok,
      'error', jsonb_build_object('code', a.error_code,
                                  'message', a.error_message),
      'started_at_ms', (extract(epoch from a.started_at) * 1000)::bigint,
      'duration_ms', a.duration_ms)
      order by a.life, a.stage_index, a.attempt)
    from job_attempts a where a.job_id = j.job_id), '[]'::jsonb),
  now()
from jobs j
where j.job_id = any(array(select json_array_elements_text($1::json)))
on conflict (job_id) do update set failed_stage = excluded.failed_stage,
  stage = excluded.stage, last_error = excluded.last_error,
  attempts = excluded.attempts, dead_at = excluded.dead_at
)SQL";

// Children a stage spawned (job_write::spawn): `scheduled` and due now, so
// that the schedulers publish them; they take their parent's tenant,
// correlation id and trace. The same child again is left alone.
inline const char* const sql_insert_spawned = R"SQL(
insert into jobs (job_id, pipeline, tenant, correlation_id, priority, state,
  payload, run_at, epoch, parent_id, parent_stage, child_index, traceparent,
  tracestate)
select x.job_id, x.pipeline, p.tenant, p.correlation_id,
  coalesce(x.priority, 0), 'scheduled', x.payload::jsonb, now(), 0,
  x.parent_id, x.parent_stage, x.child_index, p.traceparent, p.tracestate
from json_to_recordset($1::json) as x(job_id text, pipeline text,
  payload text, priority int, parent_id text, parent_stage int,
  child_index int)
join jobs p on p.job_id = x.parent_id
on conflict (job_id) do nothing
)SQL";

// The join: parents (JSON array of ids) whose children are all terminal
// become due (the migration's troupe.resume_parents).
inline const char* const sql_resume_parents = R"SQL(
select troupe.resume_parents(array(select json_array_elements_text($1::json)))
)SQL";

// Batches (JSON array of ids) whose jobs have all ended complete, and their
// callbacks are created (the migration's troupe.settle_batches).
inline const char* const sql_settle_batches = R"SQL(
select troupe.settle_batches(array(select json_array_elements_text($1::json)))
)SQL";

} // namespace troupe::pg_sql
