"""A small troupe client in Python's standard library alone.

No NATS client is packaged in Debian, so this speaks the NATS text protocol
(https://docs.nats.io/reference/reference-protocols/nats-protocol) over one
socket: enough for request/reply on troupe's documented subjects
(docs/wire-format.md) and for following events. It is synchronous and
single-threaded; several requests may be in flight at once (replies are
matched by their inbox token).
"""

import json
import os
import secrets
import socket
import time

# Codes a caller should retry with the same key (docs/wire-format.md).
RETRYABLE = {"unavailable", "rate_limited", "no_responders", "timeout"}
# Codes that will fail the same way every time: fix the request.
PERMANENT = {"invalid_payload", "payload_too_large", "nesting_too_deep",
             "key_too_long", "unknown_pipeline", "unknown_tenant",
             "conflict", "not_found"}


class TroupeError(Exception):
    """A request troupe refused, or that got no answer: `.code`, `.message`."""

    def __init__(self, code, message, retry_after_ms=None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms

    @property
    def retryable(self):
        return self.code in RETRYABLE


class Connection:
    """One NATS connection. `url` is nats://[user:pass@]host:port."""

    def __init__(self, url=None, name="troupe-python", prefix="troupe",
                 timeout=5.0):
        url = url or os.environ.get("TROUPE_NATS_URL", "nats://127.0.0.1:4222")
        self.prefix = prefix
        self._buf = b""
        self._replies = {}      # token -> decoded reply
        self._handlers = {}     # sid -> callable(subject, payload)
        self._sid = 1
        self._inbox = "_INBOX." + secrets.token_hex(11)
        self._sock = self._dial(url, timeout)
        self._handshake(url, name)
        self._send(f"SUB {self._inbox}.* 1\r\n")

    # -- troupe's API ------------------------------------------------------

    def submit(self, pipeline, payload, key=None, **fields):
        """Submits a job; returns the reply (`job_id`, maybe `duplicate`).
        Raises TroupeError with the server's code when it is refused."""
        body = {"pipeline": pipeline, "payload": payload}
        if key is not None:
            body["key"] = key
        body.update(fields)
        return self.api("submit", body)

    def submit_retrying(self, pipeline, payload, key, attempts=8, **fields):
        """Submits, retrying what may pass later with the same key (so a
        retry never makes a second job). Permanent errors are raised."""
        delay = 0.1
        for attempt in range(1, attempts + 1):
            try:
                return self.submit(pipeline, payload, key, **fields)
            except TroupeError as e:
                if not e.retryable or attempt == attempts:
                    raise
                wait = (e.retry_after_ms or 0) / 1000 or delay
                time.sleep(wait)
                delay = min(delay * 2, 5.0)

    def status(self, job_id):
        return self.api("status", {"job_id": job_id})

    def wait(self, job_id, timeout_ms=30000):
        """The job's status once it ended (`done` true) or after timeout_ms."""
        return self.api("wait", {"job_id": job_id, "timeout_ms": timeout_ms},
                        timeout=timeout_ms / 1000 + 5)

    def api(self, verb, body, timeout=5.0):
        reply = self.request(f"{self.prefix}.api.v1.{verb}", body, timeout)
        if not reply.get("ok"):
            err = reply.get("error") or {}
            raise TroupeError(err.get("code", "unknown"),
                              err.get("message", ""),
                              err.get("retry_after_ms"))
        return reply

    # -- request/reply -----------------------------------------------------

    def request(self, subject, body, timeout=5.0):
        token = self.start_request(subject, body)
        return self.finish_request(token, timeout)

    def start_request(self, subject, body):
        """Sends a request without waiting; returns its token."""
        token = secrets.token_hex(6)
        data = json.dumps(body).encode()
        self._send(f"PUB {subject} {self._inbox}.{token} {len(data)}\r\n"
                   .encode() + data + b"\r\n")
        self._replies[token] = None
        return token

    def finish_request(self, token, timeout=5.0):
        deadline = time.monotonic() + timeout
        while self._replies.get(token) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                self._replies.pop(token, None)
                raise TroupeError("timeout", f"no reply within {timeout} s")
            self._read_one(left)
        reply = self._replies.pop(token)
        if isinstance(reply, TroupeError):
            raise reply
        return reply

    def replied(self, token):
        """True once the request's reply (or its failure) has arrived."""
        return self._replies.get(token) is not None

    def forget(self, token):
        """Gives up on a request; a late reply to it is dropped."""
        self._replies.pop(token, None)

    def poll_reply(self, timeout):
        """Reads for up to `timeout` s; returns a token whose reply arrived,
        or None."""
        before = {t for t, r in self._replies.items() if r is not None}
        self._read_one(timeout)
        for t, r in self._replies.items():
            if r is not None and t not in before:
                return t
        return None

    def subscribe(self, subject, handler):
        """Calls handler(subject, decoded JSON) for each message while the
        connection is read (by requests or `pump`)."""
        self._sid += 1
        self._handlers[str(self._sid)] = handler
        self._send(f"SUB {subject} {self._sid}\r\n")

    def pump(self, seconds):
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._read_one(left)

    def close(self):
        try:
            self._sock.close()
        except OSError:
            pass

    # -- protocol ----------------------------------------------------------

    @staticmethod
    def _dial(url, timeout):
        rest = url.split("://", 1)[-1].split(",")[0]
        hostport = rest.rsplit("@", 1)[-1]
        host, _, port = hostport.partition(":")
        return socket.create_connection((host, int(port or 4222)), timeout)

    def _handshake(self, url, name):
        info = self._line()
        if not info.startswith(b"INFO "):
            raise TroupeError("protocol", f"expected INFO, got {info[:40]!r}")
        opts = {"verbose": False, "pedantic": False, "name": name,
                "lang": "python", "version": "1", "protocol": 1,
                "headers": True, "no_responders": True}
        rest = url.split("://", 1)[-1].split(",")[0]
        if "@" in rest:
            cred = rest.rsplit("@", 1)[0]
            user, sep, password = cred.partition(":")
            if sep:
                opts.update(user=user, **{"pass": password})
            else:
                opts["auth_token"] = user
        self._send(f"CONNECT {json.dumps(opts)}\r\nPING\r\n")
        while True:
            line = self._line()
            if line == b"PONG":
                return
            if line.startswith(b"-ERR"):
                raise TroupeError("refused", line.decode(errors="replace"))

    def _send(self, data):
        self._sock.sendall(data.encode() if isinstance(data, str) else data)

    def _fill(self, timeout):
        self._sock.settimeout(max(timeout, 0.001))
        try:
            chunk = self._sock.recv(65536)
        except socket.timeout:
            return False
        if not chunk:
            raise TroupeError("unavailable", "the NATS server closed the connection")
        self._buf += chunk
        return True

    def _line(self, timeout=5.0):
        while b"\r\n" not in self._buf:
            if not self._fill(timeout):
                raise TroupeError("timeout", "the NATS server said nothing")
        line, self._buf = self._buf.split(b"\r\n", 1)
        return line

    def _read_exact(self, n):
        while len(self._buf) < n + 2:
            if not self._fill(5.0):
                raise TroupeError("timeout", "message cut short")
        data, self._buf = self._buf[:n], self._buf[n + 2:]
        return data

    def _read_one(self, timeout):
        """Reads and dispatches one protocol line (or times out quietly)."""
        if b"\r\n" not in self._buf and not self._fill(timeout):
            return
        if b"\r\n" not in self._buf:
            return
        line = self._line()
        if line == b"PING":
            self._send("PONG\r\n")
        elif line.startswith(b"MSG "):
            parts = line.split()
            self._deliver(parts[1].decode(), parts[2].decode(), None,
                          self._read_exact(int(parts[-1])))
        elif line.startswith(b"HMSG "):
            parts = line.split()
            hlen, total = int(parts[-2]), int(parts[-1])
            raw = self._read_exact(total)
            self._deliver(parts[1].decode(), parts[2].decode(),
                          raw[:hlen], raw[hlen:])
        elif line.startswith(b"-ERR"):
            raise TroupeError("refused", line.decode(errors="replace"))

    def _deliver(self, subject, sid, headers, payload):
        if sid == "1":
            token = subject.rsplit(".", 1)[-1]
            if token not in self._replies:
                return  # a late reply to a request that timed out
            if headers and b" 503" in headers.split(b"\r\n", 1)[0]:
                self._replies[token] = TroupeError(
                    "no_responders", "no troupe node answers (is one running?)")
            else:
                self._replies[token] = json.loads(payload)
        elif sid in self._handlers:
            try:
                body = json.loads(payload)
            except ValueError:
                body = None
            self._handlers[sid](subject, body)
