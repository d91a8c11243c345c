#!/usr/bin/env python3
"""Ingests documents through troupe and prints what happened.

    run.py [--nats URL] [--query TEXT] SOURCE...

A SOURCE is a folder (every .pdf, .html, .htm, .md, .txt in it), a file
or an http(s) URL. Each becomes one job of the `ingest` pipeline, keyed by
its source (submitting the same source again is the same job, run once).
Shows each stage's progress live from the events, waits for every job with
the status API, and prints a summary. Exits 0 when every job ended
(succeeded or dead-lettered), 1 otherwise.
"""

import argparse
import hashlib
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "publishers", "python"))

from troupe_client import Connection, TroupeError  # noqa: E402

STAGES = ["fetch", "extract", "clean", "chunk", "embed", "store"]
WAIT_MS = 10000
TYPES = (".pdf", ".html", ".htm", ".md", ".markdown", ".txt", ".text")


def sources_of(args):
    for s in args:
        if s.startswith(("http://", "https://")):
            yield s
        elif os.path.isdir(s):
            for name in sorted(os.listdir(s)):
                if name.lower().endswith(TYPES):
                    yield os.path.abspath(os.path.join(s, name))
        else:
            yield os.path.abspath(s)


def job_key(source):
    return "doc-" + hashlib.sha256(source.encode()).hexdigest()[:24]


class Board:
    """Live counts from the job's events (best effort: the summary comes
    from the status API, which reads PostgreSQL)."""

    def __init__(self, total):
        self.total, self.done = total, {}
        self.stages = {s: 0 for s in STAGES}
        self.retries, self.last = 0, 0.0
        self.tty = sys.stdout.isatty()

    def on_event(self, _subject, ev):
        if not ev:
            return
        if ev.get("type") == "stage.succeeded" and ev.get("stage") in self.stages:
            self.stages[ev["stage"]] += 1
        elif ev.get("type") == "job.retrying":
            self.retries += 1
        self.show()

    def show(self, force=False):
        now = time.monotonic()
        if (not force or not self.tty) and now - self.last < (0.2 if self.tty else 2.0):
            return
        self.last = now
        line = "  ".join(f"{s} {n}" for s, n in self.stages.items())
        ended = len(self.done)
        text = f"  {line}  | ended {ended}/{self.total}, retries {self.retries}"
        print(("\r" + text) if self.tty else text, end="" if self.tty else "\n",
              flush=True)


def submit_all(conn, sources):
    jobs = {}
    for source in sources:
        payload = {"url": source} if "://" in source else {"path": source}
        try:
            reply = conn.submit_retrying("ingest", payload, key=job_key(source),
                                         correlation_id=os.path.basename(source)[:200])
        except TroupeError as e:
            print(f"  refused: {source}: {e}", file=sys.stderr)
            continue
        jobs[reply["job_id"]] = source
    return jobs


def wait_all(conn, jobs, board, deadline):
    """Waits for every job with the `wait` API, several at once. A wait
    whose node stops answering (killed, say) is asked again elsewhere."""
    pending = {}  # token -> (job, when asked)

    def ask(job):
        token = conn.start_request(f"{conn.prefix}.api.v1.wait",
                                   {"job_id": job, "timeout_ms": WAIT_MS})
        pending[token] = (job, time.monotonic())

    for j in jobs:
        ask(j)
    while pending and time.monotonic() < deadline:
        conn.poll_reply(0.5)
        board.show()
        for token, (job, asked) in list(pending.items()):
            if conn.replied(token):
                del pending[token]
                finished(conn, token, job, board, ask)
            elif time.monotonic() - asked > WAIT_MS / 1000 + 5:
                conn.forget(token)
                del pending[token]
                ask(job)
    return [jobs[j] for j, _ in pending.values()]


def finished(conn, token, job, board, ask):
    try:
        reply = conn.finish_request(token)
    except TroupeError:
        reply = {}
    if reply.get("done"):
        board.done[job] = reply["job"]
        board.show(force=True)
    else:  # not ended yet, not taken yet, or a node stopping: ask again
        ask(job)


def summary(jobs, board, started):
    ok = [j for j in board.done.values() if j["state"] == "succeeded"]
    new = [j for j in ok if not j["result"].get("duplicate")]
    dups = [j for j in ok if j["result"].get("duplicate")]
    dead = [j for j in board.done.values() if j["state"] == "dead_lettered"]
    secs = time.monotonic() - started
    print(f"\n\ningested {len(jobs)} sources in {secs:.1f} s "
          f"({len(jobs) / secs:.1f} documents/s)")
    print(f"  documents stored   {len(new)}")
    print(f"  chunks stored      {sum(j['result']['chunks'] for j in new)}")
    print(f"  duplicates         {len(dups)}"
          + "".join(f"\n    {jobs[j['job_id']]}: same bytes as "
                    f"{jobs.get(j['result']['duplicate_of'], j['result']['duplicate_of'])}"
                    for j in dups))
    print(f"  dead letters       {len(dead)}")
    for j in dead:
        err = j.get("error") or {}
        why = (err.get("message") or "").strip().splitlines() or [""]
        print(f"    {jobs[j['job_id']]}: {j['stage']}: {why[-1][:160]}")
        print(f"      inspect: troupe shell -c 'job {j['job_id']}'")
    print(f"  retries            {board.retries}")
    return len(ok) + len(dead) == len(jobs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sources", nargs="+")
    ap.add_argument("--nats", default=None, help="default $TROUPE_NATS_URL or local")
    ap.add_argument("--query", default=None, help="search this after ingesting")
    ap.add_argument("--timeout", type=float, default=600, help="seconds")
    a = ap.parse_args()
    sources = list(sources_of(a.sources))
    if not sources:
        sys.exit("no documents to ingest")
    conn = Connection(a.nats, name="ingest-run")
    board = Board(len(sources))
    conn.subscribe(f"{conn.prefix}.events.ingest.>", board.on_event)
    started = time.monotonic()
    print(f"submitting {len(sources)} documents to pipeline 'ingest' "
          f"({' → '.join(STAGES)})")
    jobs = submit_all(conn, sources)
    unfinished = wait_all(conn, jobs, board, started + a.timeout)
    all_ended = summary(jobs, board, started) and not unfinished
    for s in unfinished:
        print(f"  not ended in time: {s}")
    conn.close()
    if a.query:  # query.py needs psycopg2, which Debian's python3 has
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        subprocess.run([python, os.path.join(HERE, "query.py"), a.query])
    sys.exit(0 if all_ended else 1)


if __name__ == "__main__":
    main()
