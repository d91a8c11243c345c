"""Stage 5, embed: one vector per chunk. The model here is a deterministic
hashed n-gram embedding (word unigrams and bigrams, character trigrams,
256 dimensions, L2-normalised), so the example needs no model download;
`query.py` embeds queries the same way. To use a real model, replace this
stage's command: the store takes vectors of any dimension."""

import hashlib
import math
import re

from common import troupe_stage
from troupe_stage import progress

MODEL = "hash-ngram-256"
DIMS = 256
WORD = re.compile(r"\w+", re.UNICODE)


def features(text):
    words = [w.lower() for w in WORD.findall(text)]
    for w in words:
        yield "w:" + w, 1.0
        padded = f"#{w}#"
        for i in range(len(padded) - 2):
            yield "c:" + padded[i:i + 3], 0.5
    for a, b in zip(words, words[1:]):
        yield f"b:{a} {b}", 0.7


def embed(text):
    v = [0.0] * DIMS
    for feature, weight in features(text):
        h = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        index = int.from_bytes(h[:4], "little") % DIMS
        v[index] += weight if h[4] & 1 else -weight  # signed hashing
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return [round(x / norm, 5) for x in v]


def work(job):
    chunks = job.previous("chunk")["chunks"]
    vectors = []
    for i, c in enumerate(chunks):
        vectors.append(embed(c["text"]))
        if i % 25 == 24:
            progress((i + 1) / len(chunks), f"embedded {i + 1} of {len(chunks)} chunks")
    return {"model": MODEL, "dims": DIMS, "vectors": vectors}


if __name__ == "__main__":
    troupe_stage.run(work)
