-- The example's own tables (schema `ingest`), beside troupe's. store.py
-- applies this once, under an advisory lock, when the tables are missing.
create schema if not exists ingest;

-- One row per distinct document (by the SHA-256 of its bytes).
create table if not exists ingest.documents (
  sha256      text primary key,
  source      text not null,          -- where it was first seen
  sources     text[] not null,        -- every source that had these bytes
  type        text not null,
  title       text not null,
  bytes       bigint not null,
  words       integer not null,
  chunks      integer not null,
  model       text not null,
  job_id      text not null,          -- the job that stored it
  ingested_at timestamptz not null default now()
);

create table if not exists ingest.chunks (
  sha256     text not null references ingest.documents on delete cascade,
  n          integer not null,
  start_word integer not null,
  text       text not null,
  embedding  real[] not null,
  tsv        tsvector generated always as (to_tsvector('english', text)) stored,
  primary key (sha256, n)
);

create index if not exists chunks_tsv on ingest.chunks using gin (tsv);
