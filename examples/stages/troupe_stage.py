"""Helpers for writing a troupe `exec` stage in Python (docs/stages.md).

    from troupe_stage import run, progress, Retry, Fail

    def work(job):
        text = job.previous("extract")["text"]
        progress(0.5, "half way")
        if upstream_busy():
            raise Retry("upstream busy")       # exit 75: retried with backoff
        if not text:
            raise Fail("no text")              # exit 1: dead-lettered at once
        return {"words": len(text.split())}    # the stage's output (stdout)

    run(work)

The stage input (stdin) is one JSON document; `job` wraps it. Anything the
stage prints to stdout other than its result would corrupt the output, so
`run` keeps stdout for the result alone (print() goes to stderr).
"""

import json
import os
import sys
import traceback

EX_TEMPFAIL = 75  # the default retryable exit code of an exec stage


class Retry(Exception):
    """A failure that may pass later: the attempt is retried (exit 75)."""


class Fail(Exception):
    """A failure that will not pass: the job is dead-lettered (exit 1)."""


class Job:
    """The stage input (docs/wire-format.md, "Stage input")."""

    def __init__(self, doc):
        self.doc = doc
        self.job_id = doc.get("job_id")
        self.stage = doc.get("stage")
        self.attempt = doc.get("attempt", 1)
        self.idempotency_key = doc.get("idempotency_key")
        self.payload = doc.get("payload")
        # What the previous attempt of this stage reported as `details`.
        self.heartbeat_details = doc.get("heartbeat_details")

    def previous(self, stage):
        """The output of an earlier stage of this job."""
        prev = self.doc.get("previous") or {}
        if stage not in prev:
            raise Fail(f"no output of stage '{stage}' in the input")
        return prev[stage]


def _report(obj):
    # Descriptor 3 is always open for an exec stage; when the program runs
    # by hand it may not be, and a report is then simply dropped.
    try:
        os.write(3, (json.dumps(obj) + "\n").encode())
    except OSError:
        pass


def progress(fraction=None, message=None, details=None):
    """Reports how far the stage got (0..1), a message, and `details` the
    next attempt receives as `heartbeat_details` to resume from."""
    report = {}
    if fraction is not None:
        report["progress"] = max(0.0, min(1.0, float(fraction)))
    if message is not None:
        report["message"] = str(message)[:1024]
    if details is not None:
        report["details"] = details
    _report(report or {"heartbeat": True})


def heartbeat():
    """Says "alive" (resets the stage's heartbeat_timeout)."""
    _report({"heartbeat": True})


def run(work):
    """Reads the input, calls work(job), writes its result; exits 0, 75
    (Retry) or 1 (Fail, or a bug: a traceback is not worth retrying)."""
    out = sys.stdout
    sys.stdout = sys.stderr
    try:
        doc = json.load(sys.stdin)
    except ValueError as e:
        print(f"stage input is not JSON: {e}", file=sys.stderr)
        sys.exit(1)
    try:
        result = work(Job(doc))
    except Retry as e:
        print(str(e) or "retry", file=sys.stderr)
        sys.exit(EX_TEMPFAIL)
    except Fail as e:
        print(str(e) or "failed", file=sys.stderr)
        sys.exit(1)
    except Exception:
        traceback.print_exc(limit=3, file=sys.stderr)
        sys.exit(1)
    json.dump({} if result is None else result, out, separators=(",", ":"))
    out.write("\n")
    out.flush()
