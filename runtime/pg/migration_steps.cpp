#include "runtime/pg/migration_steps.hpp"

namespace troupe {

namespace {

// Never edit a released migration: add a new one. See docs/schema.md.
const migration steps[] = {
    {1, "jobs, checkpoints, attempts, events, dead letters", R"SQL(
create table jobs (
  job_id          text primary key,
  pipeline        text not null,
  tenant          text not null default '',
  correlation_id  text not null default '',
  priority        int not null default 0,
  state           text not null check (state in ('queued', 'running',
                    'retrying', 'succeeded', 'dead_lettered', 'cancelled')),
  stage_index     int not null default 0,
  attempt         int not null default 0,
  epoch           bigint not null default 0,
  life            int not null default 1,
  start_stage     int not null default 0,
  lease_owner     text,
  lease_until     timestamptz,
  payload         jsonb,
  result          jsonb,
  last_error      text,
  created_at      timestamptz not null default now(),
  started_at      timestamptz,
  finished_at     timestamptz,
  next_attempt_at timestamptz,
  updated_at      timestamptz not null default now()
);
create index jobs_pipeline_state_created on jobs (pipeline, state, created_at);
create index jobs_tenant_state on jobs (tenant, state, created_at);
create index jobs_active on jobs (state, lease_until)
  where state in ('queued', 'running', 'retrying');

create table stage_checkpoints (
  job_id       text not null references jobs on delete cascade,
  stage_index  int not null,
  stage        text not null,
  output       jsonb,
  attempts     int not null,
  duration_ms  bigint not null,
  finished_at  timestamptz not null,
  primary key (job_id, stage_index)
);

create table job_attempts (
  job_id         text not null references jobs on delete cascade,
  life           int not null,
  stage_index    int not null,
  attempt        int not null,
  stage          text not null,
  node           text not null,
  ok             boolean not null,
  error_code     text,
  error_message  text,
  started_at     timestamptz not null,
  duration_ms    bigint not null,
  primary key (job_id, life, stage_index, attempt)
);

create table job_events (
  id       bigserial primary key,
  job_id   text not null,
  type     text not null,
  time     timestamptz not null,
  node     text,
  stage    text,
  attempt  int,
  body     jsonb not null
);
create index job_events_job on job_events (job_id, id);
create index job_events_time on job_events (time);

create table dead_letters (
  job_id        text primary key references jobs on delete cascade,
  pipeline      text not null,
  failed_stage  int,
  stage         text,
  last_error    text,
  attempts      jsonb not null,
  dead_at       timestamptz not null default now(),
  replay_count  int not null default 0,
  replayed_at   timestamptz
);
create index dead_letters_pipeline on dead_letters (pipeline, dead_at);
)SQL"},
    {2, "pipeline controls (pause), finished-job index", R"SQL(
create table pipeline_controls (
  pipeline    text primary key,
  paused      boolean not null default false,
  updated_at  timestamptz not null default now(),
  updated_by  text not null default ''
);
create index jobs_finished on jobs (finished_at) where finished_at is not null;
)SQL"},
    {3, "retention policies shared by the cluster", R"SQL(
create table pipeline_retention (
  pipeline    text primary key,
  keep_ms     bigint not null,
  node        text not null,
  updated_at  timestamptz not null default now()
);
)SQL"},
    {4, "time in the store: scheduled jobs, run_at, generations, enqueue",
     R"SQL(
alter table jobs drop constraint jobs_state_check;
alter table jobs add constraint jobs_state_check check (state in
  ('scheduled', 'queued', 'running', 'retrying', 'succeeded',
   'dead_lettered', 'cancelled'));
-- run_at set: the store holds the job until then, and only the scheduler
-- publishes it (docs/scheduling.md). gen counts the scheduler's
-- publications; a claim takes the job only from the newest one.
alter table jobs add column run_at timestamptz;
alter table jobs add column gen int not null default 0;
create index jobs_due on jobs (run_at) where run_at is not null;
create index jobs_leased on jobs (lease_owner)
  where state in ('running', 'retrying') and run_at is null;
create index jobs_lease_expiry on jobs (lease_until)
  where state in ('running', 'retrying') and run_at is null;

create schema if not exists troupe;

-- Enqueues a job inside the caller's transaction: it exists if and only if
-- that transaction commits, and a node's scheduler publishes it then. A key
-- names the job (the same key again returns the same id, and enqueues
-- nothing). Runs with the search path of the migration, so it finds the
-- tables whatever the caller's path is.
create function troupe.enqueue(pipeline text, payload jsonb,
    key text default null, run_at timestamptz default now(),
    tenant text default '', priority int default 0)
  returns text language plpgsql set search_path from current as $fn$
declare
  id text := coalesce(key, 'sql-' || gen_random_uuid()::text);
begin
  if pipeline is null or pipeline !~ '^[A-Za-z0-9_-]{1,128}$' then
    raise exception 'troupe.enqueue: pipeline % is not a pipeline name '
      '(letters, digits, _ and -)', coalesce(pipeline, 'null')
      using errcode = '22023';
  end if;
  if length(id) = 0 or length(id) > 256 or position('#' in id) > 0
     or id ~ '[[:cntrl:]]' then
    raise exception 'troupe.enqueue: key must be 1 to 256 characters, '
      'without # or control characters' using errcode = '22023';
  end if;
  insert into jobs (job_id, pipeline, tenant, priority, state, payload,
    run_at, epoch)
  values (id, pipeline, coalesce(tenant, ''), coalesce(priority, 0),
    'scheduled', payload, coalesce(run_at, now()), 0)
  on conflict (job_id) do nothing;
  perform pg_notify('troupe_due', '');
  return id;
end
$fn$;
)SQL"},
    {5, "cron schedules", R"SQL(
create table schedules (
  name        text primary key,
  cron        text not null,
  timezone    text not null,
  pipeline    text not null,
  payload     jsonb,
  overlap     text not null check (overlap in ('allow', 'skip')),
  catch_up    text not null check (catch_up in ('none', 'last', 'all')),
  paused      boolean not null default false,
  -- The next slot to fire (null: not computed yet), and the last fired.
  next_at     timestamptz,
  last_at     timestamptz,
  last_job    text,
  node        text not null,
  updated_at  timestamptz not null default now()
);
)SQL"},
    {6, "tenant slots shared by the cluster", R"SQL(
-- One row per slot of a tenant's max_in_flight; a node runs a tenant's job
-- only in a slot it leases here (runtime/pg/tenant_slots.cpp).
create table tenant_slots (
  tenant       text not null,
  slot         int not null,
  node         text,
  lease_until  timestamptz,
  primary key (tenant, slot)
);
create index tenant_slots_node on tenant_slots (node) where node is not null;
)SQL"},
    {7, "a job's latest progress", R"SQL(
-- What the running stage last reported: {"stage_index", "stage",
-- "attempt", "progress", "message", "details", "at_ms"} (docs/stages.md).
-- The next attempt of that stage receives "details".
alter table jobs add column progress jsonb;
)SQL"},
    {8, "callback stages: the waiting state and the callback record", R"SQL(
alter table jobs drop constraint jobs_state_check;
alter table jobs add constraint jobs_state_check check (state in
  ('scheduled', 'queued', 'running', 'retrying', 'waiting', 'succeeded',
   'dead_lettered', 'cancelled'));
-- A callback stage's wait: {"hash" (SHA-256 of the token, hex),
-- "stage_index", "life", "attempt", "since_ms", "deadline_ms"}, plus
-- "completion" and "completed_ms" once an outside system completed it
-- (docs/stages.md). The token itself is never stored.
alter table jobs add column callback jsonb;
)SQL"},
    {9, "W3C trace context of a job", R"SQL(
-- As submitted (body fields or headers); '' when none (docs/wire-format.md).
alter table jobs add column traceparent text not null default '';
alter table jobs add column tracestate text not null default '';
)SQL"},
    {10, "the submit API's log of accepted submissions", R"SQL(
-- What the stream accepted through the submit API, until a node claims the
-- job (runtime/pg/submission_log.hpp): the stranded sweeper publishes a
-- submission again when the broker lost its message, and deletes the
-- record once the job has a row.
create table submissions (
  job_id      text primary key,
  pipeline    text not null,
  subject     text not null,
  body        text not null,
  stream_seq  bigint not null,
  accepted_at timestamptz not null default now()
);
create index submissions_accepted on submissions (accepted_at);
-- Where a queued job's message is (written by the scheduler and by replays
-- when the stream acks it): the sweeper looks for it there, and hands a
-- job whose message the broker lost back to the scheduler.
alter table jobs add column stream_seq bigint;
create index jobs_queued_since on jobs (updated_at) where state = 'queued';
)SQL"},
    {11, "child jobs: parents wait in the store for their children", R"SQL(
-- A child job names its parent, the parent's stage that spawned it and its
-- place in that spawn (docs/workflows.md).
alter table jobs add column parent_id text;
alter table jobs add column parent_stage int;
alter table jobs add column child_index int;
-- A parent's wait for its children: {"stage_index", "life", "policy",
-- "total", "since_ms"}; cleared once the parent moves past that stage.
alter table jobs add column children jsonb;
create index jobs_children on jobs (parent_id, parent_stage, child_index)
  where parent_id is not null;
create index jobs_open_children on jobs (parent_id, parent_stage)
  where parent_id is not null
    and state not in ('succeeded', 'dead_lettered', 'cancelled');

-- Makes due every parent in `parents` that waits for children none of
-- which is still open: the join, decided in the transaction that records
-- a child's terminal state. Parents are locked in id order first, so two
-- transactions that end a parent's last two children never both miss the
-- other's child (the count runs after the lock, with a fresh snapshot) and
-- never deadlock on two parents.
create function troupe.resume_parents(parents text[])
  returns int language plpgsql set search_path from current as $fn$
declare
  p record;
  n int := 0;
begin
  for p in
    select job_id, (children->>'stage_index')::int as stage from jobs
    where job_id = any(parents) and state = 'waiting'
      and children is not null and run_at is null
    order by job_id
    for update
  loop
    if not exists (
        select 1 from jobs c where c.parent_id = p.job_id
          and c.parent_stage = p.stage
          and c.state not in ('succeeded', 'dead_lettered', 'cancelled')) then
      update jobs set run_at = now(), updated_at = now()
        where job_id = p.job_id;
      n := n + 1;
    end if;
  end loop;
  if n > 0 then
    perform pg_notify('troupe_due', '');
  end if;
  return n;
end
$fn$;
)SQL"},
    {12, "batches: jobs submitted together, callbacks when all have ended",
     R"SQL(
-- A batch (docs/workflows.md): its jobs carry its id; when the last one
-- ends, the transaction that records it completes the batch and creates
-- its callback jobs (on_complete always, on_success if every job
-- succeeded): {"pipeline", "payload"}.
create table batches (
  batch_id      text primary key,
  tenant        text not null default '',
  total         int not null,
  on_complete   jsonb,
  on_success    jsonb,
  succeeded     int,
  failed        int,
  created_at    timestamptz not null default now(),
  completed_at  timestamptz,
  node          text not null default ''
);
alter table jobs add column batch_id text;
create index jobs_batch on jobs (batch_id) where batch_id is not null;
create index jobs_open_batch on jobs (batch_id)
  where batch_id is not null
    and state not in ('succeeded', 'dead_lettered', 'cancelled');

-- Completes every batch in `ids` none of whose jobs is still open, once
-- (completed_at), and creates its callbacks, due now. Locks the batches in
-- id order first, as troupe.resume_parents does for parents.
create function troupe.settle_batches(ids text[])
  returns int language plpgsql set search_path from current as $fn$
declare
  b record;
  ok int;
  bad int;
  n int := 0;
begin
  for b in
    select * from batches
    where batch_id = any(ids) and completed_at is null
    order by batch_id
    for update
  loop
    continue when exists (
      select 1 from jobs where batch_id = b.batch_id
        and state not in ('succeeded', 'dead_lettered', 'cancelled'));
    select count(*) filter (where state = 'succeeded'),
           count(*) filter (where state <> 'succeeded')
      into ok, bad from jobs where batch_id = b.batch_id;
    update batches set completed_at = now(), succeeded = ok, failed = bad
      where batch_id = b.batch_id;
    insert into jobs (job_id, pipeline, tenant, state, payload, run_at, epoch)
    select b.batch_id || '/' || cb.name, cb.spec->>'pipeline', b.tenant,
      'scheduled', jsonb_build_object('batch_id', b.batch_id,
        'total', b.total, 'succeeded', ok, 'failed', bad,
        'payload', cb.spec->'payload'), now(), 0
    from (values ('on_complete', b.on_complete),
                 ('on_success', case when bad = 0 then b.on_success end))
      as cb(name, spec)
    where cb.spec is not null
    on conflict (job_id) do nothing;
    n := n + 1;
  end loop;
  if n > 0 then
    perform pg_notify('troupe_due', '');
  end if;
  return n;
end
$fn$;
)SQL"},
    {13, "tenant rates across the cluster", R"SQL(
-- One token bucket per tenant with a `rate` (runtime/pg/tenant_rates.hpp):
-- every node takes from it, whichever way a job came in.
create table tenant_rates (
  tenant      text primary key,
  tokens      double precision not null,
  at          timestamptz not null,
  last_taken  int not null default 0
);

-- Refills `tenant`'s bucket (`rate` per second, at most `burst`) and takes
-- `n` tokens if it holds them, or always when `reserve` (the bucket goes
-- into debt: the caller waits until it is paid). Returns the tokens held
-- before the take and how many were taken. One statement on the row, so
-- that concurrent takers on every node serialise on its lock.
create function troupe.take_rate(t text, rate double precision,
    burst double precision, n int, reserve boolean,
    out held double precision, out taken int)
  language plpgsql set search_path from current as $fn$
begin
  insert into tenant_rates (tenant, tokens, at) values (t, burst, clock_timestamp())
    on conflict (tenant) do nothing;
  update tenant_rates set
    tokens = least(burst, tokens + rate *
        extract(epoch from clock_timestamp() - at)) -
      case when reserve or least(burst, tokens + rate *
          extract(epoch from clock_timestamp() - at)) >= n then n else 0 end,
    last_taken = case when reserve or least(burst, tokens + rate *
          extract(epoch from clock_timestamp() - at)) >= n then n else 0 end,
    at = clock_timestamp()
  where tenant = t
  returning tokens + last_taken, last_taken into held, taken;
end
$fn$;
)SQL"},
    {14, "one lease per node instead of one per running job", R"SQL(
-- A node holds one lease for every job it runs (runtime/pg/schedule_store.hpp):
-- renewing it writes one row, however many jobs the node runs. Renewing a
-- lease per job rewrote every running job's row four times per lease
-- period, held their row locks against the node's own writes, and halved
-- throughput (docs/benchmarks.md). owner is the node's id and the
-- incarnation of its process ('<id>#<hex>'): a restarted node does not
-- inherit the leases of the process it replaces.
create table node_leases (
  owner       text primary key,
  node        text not null,
  until       timestamptz not null,
  started_at  timestamptz not null default now()
);
-- A job held under its node's lease has lease_until null (jobs_leased
-- finds a node's jobs); a row an older node holds under a lease of its own
-- (lease_until set) is rescued when that expires, as before.
)SQL"},
    {15, "a stage's first successful attempt folded into its checkpoint",
     R"SQL(
-- A stage that succeeds is both an attempt and a checkpoint. Storing it
-- once, in the checkpoint, saves one row per stage on the hot path
-- (docs/benchmarks.md, session 21). The attempts table keeps every other
-- attempt; job_attempts, the name readers and operators' scripts use, is a
-- view of both, so the attempt history reads as before.
alter table job_attempts rename to stage_attempts;
alter table stage_checkpoints add column life int, add column node text,
  add column started_at timestamptz;
-- life is set only when the checkpoint holds its attempt.
create view job_attempts as
  select job_id, life, stage_index, attempt, stage, node, ok, error_code,
    error_message, started_at, duration_ms
  from stage_attempts
  union all
  select job_id, life, stage_index, attempts, stage, node, true, null::text,
    null::text, started_at, duration_ms
  from stage_checkpoints where life is not null;
-- Nodes of earlier versions still running during a rolling upgrade write
-- attempts to job_attempts, by INSERT and by COPY: the view takes them
-- into stage_attempts, as they were.
create function job_attempts_insert() returns trigger language plpgsql as $fn$
begin
  insert into stage_attempts (job_id, life, stage_index, attempt, stage, node,
    ok, error_code, error_message, started_at, duration_ms)
  values (new.job_id, new.life, new.stage_index, new.attempt, new.stage,
    new.node, new.ok, new.error_code, new.error_message, new.started_at,
    new.duration_ms)
  on conflict do nothing;
  return new;
end
$fn$;
create trigger job_attempts_insert instead of insert on job_attempts
  for each row execute function job_attempts_insert();
-- Roles that could read or write the table can read or write the view
-- (docs/security.md grants on the tables that exist when it is run).
do $do$
declare g record;
begin
  for g in
    select case when a.grantee = 0 then 'public'
                else a.grantee::regrole::text end as who,
           a.privilege_type as what
    from pg_class c, aclexplode(c.relacl) a
    where c.oid = 'stage_attempts'::regclass and a.grantee <> c.relowner
      and a.privilege_type in ('SELECT', 'INSERT')
  loop
    execute format('grant %s on job_attempts to %s', g.what, g.who);
  end loop;
end
$do$;
)SQL"},
    {16, "a job's checkpoints and attempts without a foreign key", R"SQL(
-- The foreign keys checked every checkpoint and attempt row against jobs:
-- 3.7 us of PostgreSQL's time per row, a sixth of its time per job
-- (docs/benchmarks.md, session 25). Every writer adds them in the
-- transaction that writes their job's row. What the keys still did, the
-- cascade when a job is deleted (retention, purge, an operator's DELETE),
-- this trigger does once per statement.
create function troupe.delete_job_rows() returns trigger language plpgsql
  set enable_seqscan = off set search_path from current as $fn$
begin
  delete from stage_checkpoints where job_id in (select job_id from gone);
  delete from stage_attempts where job_id in (select job_id from gone);
  return null;
end
$fn$;
create trigger jobs_delete_rows after delete on jobs
  referencing old table as gone
  for each statement execute function troupe.delete_job_rows();
do $do$
declare k record;
begin
  for k in
    select conrelid::regclass as t, conname from pg_constraint
    where contype = 'f' and confrelid = 'jobs'::regclass
      and conrelid in ('stage_checkpoints'::regclass,
                       'stage_attempts'::regclass)
  loop
    execute format('alter table %s drop constraint %I', k.t, k.conname);
  end loop;
end
$do$;
)SQL"},
};

} // namespace

migration_range migration_steps() {
  return {std::begin(steps), std::end(steps)};
}

} // namespace troupe
