#!/usr/bin/env python3
"""Submits one job to troupe and waits for its end (examples/publishers).

    publish.py PIPELINE KEY PAYLOAD_JSON

Exit 0: the job succeeded; 1: it ended otherwise; 2: the submission was
refused (the code and message are printed).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from troupe_client import Connection, TroupeError  # noqa: E402


def wait_for_end(conn, job_id):
    for _ in range(60):  # 10 minutes of 10 s waits
        try:
            reply = conn.wait(job_id, timeout_ms=10000)
        except TroupeError as e:
            if not e.retryable:  # not_found: accepted, not taken yet
                if e.code != "not_found":
                    raise
            continue
        if reply.get("done"):
            return reply["job"]
    print(f"{job_id} unknown: no end within 10 minutes")
    sys.exit(1)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    pipeline, key, text = sys.argv[1:]
    try:
        payload = json.loads(text)
    except ValueError as e:
        sys.exit(f"PAYLOAD_JSON is not JSON: {e}")
    conn = Connection(name="publish-python")
    try:
        reply = conn.submit_retrying(pipeline, payload, key)
    except TroupeError as e:
        print(f"refused {e.code}: {e.message}")
        sys.exit(2)
    job = wait_for_end(conn, reply["job_id"])
    outcome = job["result"] if job["state"] == "succeeded" else job["error"]
    print(job["job_id"], job["state"], json.dumps(outcome, separators=(",", ":")))
    sys.exit(0 if job["state"] == "succeeded" else 1)


if __name__ == "__main__":
    main()
