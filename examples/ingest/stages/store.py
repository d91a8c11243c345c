"""Stage 6, store: the document, its chunks and their vectors into
PostgreSQL (INGEST_PG_URL), indexed for full-text search, in one
transaction. A document whose bytes are already stored by another job is
not stored again: the job succeeds with "duplicate": true. A retry of this
same job (say its node died after the commit) finds its own row and
succeeds as it did the first time."""

import os

from common import HERE, troupe_stage
from troupe_stage import Fail, Retry, progress

try:
    import psycopg2
except ImportError:
    raise SystemExit("store.py needs python3-psycopg2 (Debian package)")

SCHEMA = os.path.join(HERE, "..", "schema.sql")


def connect():
    url = os.environ.get("INGEST_PG_URL")
    if not url:
        raise Fail("INGEST_PG_URL is not set for this stage")
    try:
        return psycopg2.connect(url, connect_timeout=10,
                                application_name="ingest-store")
    except psycopg2.OperationalError as e:
        raise Retry(f"PostgreSQL: {str(e).strip()}")


def ensure_schema(cur):
    cur.execute("select to_regclass('ingest.chunks')")
    if cur.fetchone()[0] is None:
        cur.execute("select pg_advisory_xact_lock(hashtext('ingest.schema'))")
        with open(SCHEMA) as f:
            cur.execute(f.read())


def store(cur, job, fetched, extracted, chunks, vectors):
    cur.execute(
        """insert into ingest.documents
             (sha256, source, sources, type, title, bytes, words, chunks, model, job_id)
           values (%s, %s, array[%s], %s, %s, %s, %s, %s, %s, %s)
           on conflict (sha256) do nothing returning job_id""",
        (fetched["sha256"], fetched["source"], fetched["source"], fetched["type"],
         extracted["title"], fetched["bytes"], chunks["words"], len(chunks["chunks"]),
         vectors["model"], job.job_id))
    if cur.fetchone() is None:
        return False
    cur.executemany(
        "insert into ingest.chunks (sha256, n, start_word, text, embedding)"
        " values (%s, %s, %s, %s, %s)",
        [(fetched["sha256"], c["n"], c["start_word"], c["text"], v)
         for c, v in zip(chunks["chunks"], vectors["vectors"])])
    return True


def first_owner(cur, fetched):
    cur.execute("""update ingest.documents
                      set sources = case when %s = any(sources) then sources
                                         else array_append(sources, %s::text) end
                    where sha256 = %s returning job_id""",
                (fetched["source"], fetched["source"], fetched["sha256"]))
    return cur.fetchone()[0]


def work(job):
    fetched, extracted = job.previous("fetch"), job.previous("extract")
    chunks, vectors = job.previous("chunk"), job.previous("embed")
    progress(0.1, f"storing {len(chunks['chunks'])} chunks")
    conn = connect()
    try:
        with conn, conn.cursor() as cur:
            ensure_schema(cur)
            if store(cur, job, fetched, extracted, chunks, vectors):
                owner = job.job_id
            else:
                owner = first_owner(cur, fetched)
    except psycopg2.OperationalError as e:
        raise Retry(f"PostgreSQL: {str(e).strip()}")
    finally:
        conn.close()
    result = {"document": fetched["sha256"], "source": fetched["source"],
              "type": fetched["type"], "title": extracted["title"],
              "words": chunks["words"], "chunks": len(chunks["chunks"]),
              "duplicate": owner != job.job_id}
    if result["duplicate"]:
        result["duplicate_of"] = owner
    return result


troupe_stage.run(work)
