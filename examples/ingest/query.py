#!/usr/bin/env python3
"""Searches what the ingestion example stored.

    query.py [--pg URL] [--limit 5] TEXT

Full-text search (PostgreSQL's websearch syntax: "a phrase", -not, or)
ranked with ts_rank_cd; when nothing matches, the chunks nearest the
text's embedding (the same hashed model as the embed stage) instead.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "stages"))

FULL_TEXT = """
select d.title, d.source, c.n,
       ts_headline('english', c.text, q, 'MaxWords=25, MinWords=10, StartSel=«, StopSel=»') as snippet,
       ts_rank_cd(c.tsv, q) as score
  from ingest.chunks c join ingest.documents d using (sha256),
       websearch_to_tsquery('english', %s) q
 where c.tsv @@ q
 order by score desc, d.source, c.n
 limit %s"""

NEAREST = """
select d.title, d.source, c.n, left(c.text, 200) as snippet,
       (select sum(a * b) from unnest(c.embedding, %s::real[]) t(a, b)) as score
  from ingest.chunks c join ingest.documents d using (sha256)
 order by score desc nulls last, d.source, c.n
 limit %s"""


def search(cur, text, limit):
    cur.execute(FULL_TEXT, (text, limit))
    rows = cur.fetchall()
    if rows:
        return "full text", rows
    from embed import embed
    cur.execute(NEAREST, (embed(text), limit))
    return "nearest embeddings", cur.fetchall()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("text")
    ap.add_argument("--pg", default=os.environ.get("INGEST_PG_URL"))
    ap.add_argument("--limit", type=int, default=5)
    a = ap.parse_args(argv)
    if not a.pg:
        sys.exit("query.py: give --pg URL or set INGEST_PG_URL")
    import psycopg2
    with psycopg2.connect(a.pg) as conn, conn.cursor() as cur:
        how, rows = search(cur, a.text, a.limit)
    print(f"\nsearch: {a.text}  ({how}, {len(rows)} results)")
    for title, source, n, snippet, score in rows:
        print(f"  {score:.3f}  {os.path.basename(source)} (chunk {n}) {title[:60]}")
        print(f"         {' '.join(snippet.split())[:160]}")
    return rows


if __name__ == "__main__":
    main()
