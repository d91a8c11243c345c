#!/usr/bin/env python3
"""Runs every ```sh block of a Markdown page, in order, as one bash script
from the repository's root, so that a page of commands (docs/quickstart.md)
is tested as a reader would type it. Fails on the first command that
fails; kills whatever the page left running.

    scripts/doc_test.py docs/quickstart.md [--timeout 600] [--ports 4222,55432]

--ports: fixed ports the page binds on 127.0.0.1; the run waits (90 s at
most) until each is free. The page's ports lie in Linux's ephemeral range
(32768-60999), so a connection another test has not finished closing can
hold one for a moment (CI saw "port 55432 ... is in use" once, right after
the chaos test).
"""

import argparse
import os
import re
import shutil
import signal
import socket
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


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_for_ports(ports, bound_s=90):
    deadline = time.monotonic() + bound_s
    for port in ports:
        while not port_free(port):
            if time.monotonic() > deadline:
                print(f"port {port} still in use after {bound_s} s:")
                subprocess.run(["ss", "-tanp", f"sport = :{port}"])
                return
            time.sleep(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("page")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--ports", default="")
    a = ap.parse_args()
    wait_for_ports([int(p) for p in a.ports.split(",") if p])
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
