"""A stage written with examples/stages/troupe_stage.py: the first attempt
reports progress with details and asks for a retry; the second resumes
from those details."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "examples", "stages"))
from troupe_stage import Fail, Retry, progress, run  # noqa: E402


def work(job):
    if not isinstance(job.payload.get("n"), int):
        raise Fail("payload.n must be an integer")
    if job.attempt == 1:
        progress(0.5, "half way", details={"at": 21})
        print("this goes to stderr, not into the output")
        raise Retry("not yet")
    return {"n": job.payload["n"] * 2, "resumed_from": job.heartbeat_details}


run(work)
