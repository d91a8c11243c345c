#!/usr/bin/env python3
"""Writes a sample corpus for the ingestion example into a folder: text,
Markdown, HTML and PDF documents (PDFs made here, no tool needed), one
document twice under two names, and one corrupt PDF. Deterministic for a
given seed. Also writes `expected.json`: what ingesting the folder must
give (documents, words per document, the phrase only one of them holds).

    corpus.py OUT_DIR [--count 50] [--seed 7]
"""

import argparse
import json
import os
import random

WORDS = ("actor supervisor stage retry backoff jitter ledger lease epoch "
         "stream consumer cluster node queue broker record checkpoint "
         "replay journal harbor lantern meadow orbit pepper quartz river "
         "saddle timber umbrella velvet willow yonder zenith amber basalt "
         "cedar delta ember fjord granite hollow island juniper kettle "
         "lagoon marble nectar oasis prairie quiver rustle summit tundra").split()
PHRASE = "the quick troupe of zebras crossed the frozen estuary"


def body_words(rng, n):
    return [rng.choice(WORDS) for _ in range(n)]


def lines_of(words, per_line=12):
    return [" ".join(words[i:i + per_line]) for i in range(0, len(words), per_line)]


def write_text(path, words):
    with open(path, "w") as f:
        f.write("\n".join(lines_of(words)) + "\n")


def write_markdown(path, words):
    # The heading's words are part of the text; markup characters are not.
    lines = lines_of(words[2:])
    with open(path, "w") as f:
        f.write(f"# {words[0]} {words[1]}\n\n")
        for i, line in enumerate(lines):
            f.write(("* " if i % 5 == 4 else "") + line + "\n")
            if i % 4 == 3:
                f.write("\n")


def write_html(path, words, title):
    paras = lines_of(words, 30)
    with open(path, "w") as f:
        f.write(f"<!doctype html><html><head><title>{title}</title>"
                "<style>p { color: red }</style>"
                "<script>var ignored = 'not text';</script></head><body>\n")
        for p in paras:
            f.write(f"<p>{p}</p>\n")
        f.write("</body></html>\n")


def pdf_bytes(words):
    """A minimal valid PDF, 40 lines of text a page, Helvetica."""
    pages = [lines_of(words)[i:i + 40] for i in range(0, len(lines_of(words)), 40)] or [[]]
    objs = ["<< /Type /Catalog /Pages 2 0 R >>", None,
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for lines in pages:
        ops = "BT /F1 10 Tf 50 760 Td 14 TL " + " ".join(f"({l}) Tj T*" for l in lines) + " ET"
        objs.append(f"<< /Length {len(ops)} >>\nstream\n{ops}\nendstream")
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                    f"/Contents {len(objs)} 0 R /Resources << /Font << /F1 3 0 R >> >> >>")
        kids.append(f"{len(objs)} 0 R")
    objs[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out, offsets = "%PDF-1.4\n", []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{o}\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n"
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    return out.encode("latin-1")


def generate(out, count, seed):
    rng = random.Random(seed)
    os.makedirs(out, exist_ok=True)
    kinds = ["txt", "md", "html", "pdf"]
    docs = {}
    # count files in all: count - 2 distinct good documents, a copy of one
    # of them, and a corrupt PDF.
    for i in range(count - 2):
        kind = kinds[i % 4]
        words = body_words(rng, rng.choice([40, 150, 200, 201, 360, 520, 900, 1300]))
        if i == 17:
            words[5:5] = PHRASE.split()
        name = f"doc-{i:03d}.{kind}"
        path = os.path.join(out, name)
        if kind == "txt":
            write_text(path, words)
        elif kind == "md":
            write_markdown(path, words)
        elif kind == "html":
            write_html(path, words, f"Document {i}")
        else:
            with open(path, "wb") as f:
                f.write(pdf_bytes(words))
        docs[name] = len(words)
    with open(os.path.join(out, "doc-001.md"), "rb") as f:
        copy = f.read()
    with open(os.path.join(out, "copy-of-doc-001.md"), "wb") as f:
        f.write(copy)
    good = pdf_bytes(body_words(rng, 100))
    with open(os.path.join(out, "corrupt.pdf"), "wb") as f:
        f.write(good[:200] + b"\x00\xff garbage, the rest is lost")
    expected = {"files": count, "documents": count - 2, "words": docs,
                "duplicates": {"copy-of-doc-001.md": "doc-001.md"},
                "dead_letters": ["corrupt.pdf"],
                "phrase": PHRASE, "phrase_in": "doc-017.md"}
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    return expected


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    e = generate(a.out, a.count, a.seed)
    print(f"{a.count} files in {a.out}: {e['documents']} documents, "
          f"1 duplicate, 1 corrupt PDF")
