"""Stage 2, extract: the document's text. PDFs go through pdftotext
(poppler-utils); HTML through Python's parser (scripts and styles
dropped); Markdown loses its markup; text is decoded as UTF-8."""

import base64
import html.parser
import re
import subprocess
import tempfile

from common import troupe_stage
from troupe_stage import Fail, progress


def pdf_text(data):
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(data)
        f.flush()
        try:
            r = subprocess.run(["pdftotext", "-enc", "UTF-8", f.name, "-"],
                               capture_output=True, timeout=120)
        except FileNotFoundError:
            raise troupe_stage.Retry("pdftotext is not installed on this node "
                                     "(Debian package poppler-utils)")
    if r.returncode != 0:
        why = r.stderr.decode(errors="replace").strip().splitlines()
        raise Fail("not a readable PDF: " + (why[-1] if why else f"pdftotext exit {r.returncode}"))
    return "", r.stdout.decode("utf-8", errors="replace")


class _Html(html.parser.HTMLParser):
    SKIP = {"script", "style", "noscript", "template", "svg"}
    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
             "section", "article", "pre", "blockquote", "table"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.title, self._skip, self._in_title = [], "", 0, False

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP and self._skip:
            self._skip -= 1
        elif tag == "title":
            self._in_title = False
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.parts.append(data)


def html_text(data):
    p = _Html()
    p.feed(decode(data))
    p.close()
    return p.title.strip(), "".join(p.parts)


MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
MD_MARKS = re.compile(r"(^|\s)[#>*+-]+\s|[*_`~]{1,3}")


def markdown_text(data):
    text = decode(data)
    title = next((l.lstrip("# ").strip() for l in text.splitlines()
                  if l.startswith("# ")), "")
    text = MD_LINK.sub(r"\1", text)
    return title, "\n".join(MD_MARKS.sub(r"\1", l) for l in text.splitlines())


def decode(data):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def work(job):
    fetched = job.previous("fetch")
    data = base64.b64decode(fetched["content_b64"])
    kind = fetched["type"]
    progress(0.1, f"extracting {kind}")
    if kind == "pdf":
        title, text = pdf_text(data)
    elif kind == "html":
        title, text = html_text(data)
    elif kind == "markdown":
        title, text = markdown_text(data)
    else:
        title, text = "", decode(data)
    first = next((l.strip() for l in text.splitlines() if l.strip()), "")
    return {"title": (title or first)[:200], "text": text}


troupe_stage.run(work)
