"""Stage 1, fetch: reads a document from a file under INGEST_ROOT or from an
http(s) URL, checks its size and type, and passes its bytes on (base64)
with their SHA-256, which makes the same document submitted twice one
document in the store.

Payload: {"path": "relative/or/absolute/file"} or {"url": "http://..."}.
"""

import base64
import hashlib
import os
import urllib.error
import urllib.request

from common import MAX_BYTES, troupe_stage
from troupe_stage import Fail, Retry, progress

TYPES = {".pdf": "pdf", ".html": "html", ".htm": "html", ".md": "markdown",
         ".markdown": "markdown", ".txt": "text", ".text": "text"}


def read_file(path):
    root = os.path.realpath(os.environ.get("INGEST_ROOT", os.getcwd()))
    full = os.path.realpath(os.path.join(root, path))
    # A payload names a file for this stage to read: never one outside the
    # root (no "../../etc/shadow", no symlink out of it).
    if os.path.commonpath([root, full]) != root:
        raise Fail(f"'{path}' is outside INGEST_ROOT ({root})")
    if not os.path.isfile(full):
        raise Fail(f"no file '{path}' under {root}")
    size = os.path.getsize(full)
    if size > MAX_BYTES:
        raise Fail(f"'{path}' is {size} bytes, over INGEST_MAX_BYTES ({MAX_BYTES})")
    with open(full, "rb") as f:
        return f.read(), None


def read_url(url):
    if not url.startswith(("http://", "https://")):
        raise Fail(f"only http and https URLs are fetched, not '{url[:80]}'")
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            data = r.read(MAX_BYTES + 1)
            ctype = r.headers.get_content_type()
    except urllib.error.HTTPError as e:
        if e.code >= 500 or e.code == 429:
            raise Retry(f"{url}: HTTP {e.code}, will try again")
        raise Fail(f"{url}: HTTP {e.code} {e.reason}")
    except (urllib.error.URLError, OSError) as e:
        raise Retry(f"{url}: {e}")
    if len(data) > MAX_BYTES:
        raise Fail(f"{url} is over INGEST_MAX_BYTES ({MAX_BYTES})")
    return data, ctype


def kind_of(name, data, ctype):
    if data.startswith(b"%PDF-") or ctype == "application/pdf":
        return "pdf"
    if ctype == "text/html":
        return "html"
    ext = os.path.splitext(name.split("?", 1)[0])[1].lower()
    if ext in TYPES:
        return TYPES[ext]
    if ctype in ("text/markdown", "text/plain"):
        return "markdown" if ctype == "text/markdown" else "text"
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        raise Fail(f"'{name}' is not a PDF, HTML, Markdown or text document")
    return "text"


def work(job):
    p = job.payload if isinstance(job.payload, dict) else {}
    if "path" in p:
        source = str(p["path"])
        data, ctype = read_file(source)
    elif "url" in p:
        source = str(p["url"])
        data, ctype = read_url(source)
    else:
        raise Fail('the payload needs "path" or "url"')
    kind = kind_of(source, data, ctype)
    progress(1.0, f"{len(data)} bytes, {kind}")
    return {"source": source, "type": kind, "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "content_b64": base64.b64encode(data).decode()}


troupe_stage.run(work)
