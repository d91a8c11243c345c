"""Stage 3, clean: Unicode NFKC, no control characters, one space between
words, paragraphs kept. A document with no text left is refused."""

import re
import unicodedata

from common import troupe_stage
from troupe_stage import Fail

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
SPACES = re.compile(r"[ \t\u00a0]+")


def clean(text):
    text = unicodedata.normalize("NFKC", text)
    text = CONTROL.sub(" ", text.replace("\r\n", "\n"))
    lines = [SPACES.sub(" ", l).strip() for l in text.split("\n")]
    paragraphs, current = [], []
    for line in lines + [""]:
        if line:
            current.append(line)
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    return "\n\n".join(paragraphs)


def work(job):
    text = clean(job.previous("extract")["text"])
    if not text:
        raise Fail("the document has no text to index")
    return {"text": text, "chars": len(text), "words": len(text.split())}


troupe_stage.run(work)
