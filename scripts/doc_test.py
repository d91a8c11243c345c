#!/usr/bin/env python3
"""Runs every ```sh block of a Markdown page, in order, as one bash script
from the repository's root, so that a page of commands (docs/quickstart.md)
is tested as a reader would type it. Fails on the first command that
fails; kills whatever the page left running.

    scripts/doc_test.py docs/quickstart.md [--timeout 600]
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)


def signal_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def mentioning(text):
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    pids.append(int(pid))
        except OSError:
            pass
    return pids


def stop_leftovers(pgid, tmp):
    """SIGTERM first (troupe dev then stops its servers), SIGKILL after."""
    signal_group(pgid, signal.SIGTERM)
    time.sleep(5)
    signal_group(pgid, signal.SIGKILL)
    for pid in mentioning(tmp):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("page")
    ap.add_argument("--timeout", type=int, default=600)
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, a.page)) as f:
        blocks = BLOCK.findall(f.read())
    if not blocks:
        sys.exit(f"{a.page}: no ```sh blocks")
    script = "set -euo pipefail\nset -x\n" + "\n".join(blocks)
    # The page's temporary files go to a directory of this run, so that
    # whatever it left running (servers daemonise) can be found after.
    tmp = tempfile.mkdtemp(prefix="troupe-doc-test-")
    env = dict(os.environ, TMPDIR=tmp)
    p = subprocess.Popen(["bash", "-c", script], cwd=root, env=env,
                         start_new_session=True)
    try:
        rc = p.wait(timeout=a.timeout)
    except subprocess.TimeoutExpired:
        rc = f"timeout after {a.timeout} s"
    finally:
        stop_leftovers(p.pid, tmp)
    print(f"{a.page}: {len(blocks)} blocks, exit {rc}")
    sys.exit(0 if rc == 0 else 1)


if __name__ == "__main__":
    main()
