"""Shared by the ingestion stages: the stage helper's location, limits."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "stages"))

import troupe_stage  # noqa: E402  (the path is set just above)


def env_int(name, default):
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        raise troupe_stage.Fail(f"{name} is not an integer")


# Documents larger than this are refused (8 MiB by default).
MAX_BYTES = env_int("INGEST_MAX_BYTES", 8 << 20)
# Chunks are this many words, overlapping by CHUNK_OVERLAP words.
CHUNK_WORDS = env_int("INGEST_CHUNK_WORDS", 200)
CHUNK_OVERLAP = env_int("INGEST_CHUNK_OVERLAP", 40)
