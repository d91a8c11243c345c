"""Stage 4, chunk: windows of INGEST_CHUNK_WORDS words (200) that overlap
by INGEST_CHUNK_OVERLAP words (40), so a phrase cut by one window's end is
whole in the next. n words make 1 chunk if n <= 200, else
1 + ceil((n - 200) / 160)."""

from common import CHUNK_OVERLAP, CHUNK_WORDS, troupe_stage
from troupe_stage import Fail, progress


def windows(words, size, overlap):
    step = size - overlap
    if step <= 0:
        raise Fail("INGEST_CHUNK_OVERLAP must be smaller than INGEST_CHUNK_WORDS")
    start = 0
    while True:
        yield start, words[start:start + size]
        if start + size >= len(words):
            return
        start += step


def work(job):
    words = job.previous("clean")["text"].split()
    chunks = [{"n": n, "start_word": start, "text": " ".join(w)}
              for n, (start, w) in enumerate(windows(words, CHUNK_WORDS, CHUNK_OVERLAP))]
    progress(1.0, f"{len(chunks)} chunks of {len(words)} words")
    return {"chunks": chunks, "words": len(words)}


troupe_stage.run(work)
