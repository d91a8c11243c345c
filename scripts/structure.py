#!/usr/bin/env python3
"""Reports what the structure rules of docs/architecture.md forbid: includes
against the layers (messages <- config <- actors <- runtime) or between
runtime's rooms outside runtime/CMakeLists.txt's map, files over 500 lines,
and functions over 80 lines in actors/ and runtime/ (tests, benchmarks and
fuzz targets: file size only).
A function may be longer when a comment within the 3 lines above it says
why ("long: ..."). Exit status 1 if anything is reported.

The function finder is a heuristic made for this tree's clang-format style:
a definition starts at column 0 and ends at the first `}` in column 0."""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAX_FILE, MAX_FUNCTION = 500, 80
LAYERS = {"messages": set(), "config": {"messages"},
          "actors": {"messages", "config"}}
ROOMS = {
    "common": set(),
    "observe": {"common"},
    "nats": {"common"},
    "pg": {"observe", "common"},
    "exec": {"observe", "common"},
    "client": {"nats", "common"},
    "shell": {"client", "nats", "common"},
    "ui": set(),
    "node": {"client", "pg", "exec", "nats", "observe", "ui", "common"},
    "cli": {"node", "shell", "client", "pg", "exec", "nats", "observe",
            "common"},
}
INCLUDE = re.compile(r'#include "(messages|config|actors|runtime)/(?:([a-z]+)/)?')
NOT_FUNCTION = re.compile(r"^(namespace|struct|class|enum|union|extern|template\s*<[^>]*>\s*(struct|class))\b")


def signature_end(lines, i):
    """The line that opens the body of a definition starting at line i, or
    None if lines[i] does not start one."""
    line = lines[i]
    if (not line or line[0].isspace() or line.startswith(("}", "#", "//", "using "))
            or NOT_FUNCTION.match(line) or "(" not in line
            or "=" in line.split("(")[0]):
        return None
    for k in range(i, min(i + 6, len(lines))):
        text = lines[k].rstrip()
        if text.endswith(";"):
            return None
        if text.endswith("{"):
            return k
    return None


def long_functions(path):
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        body = signature_end(lines, i)
        if body is None:
            i += 1
            continue
        end = body + 1
        while end < len(lines) and not lines[end].startswith("}"):
            end += 1
        length = end - i + 1
        why = any("long:" in lines[k] for k in range(max(0, i - 3), i))
        if length > MAX_FUNCTION and not why:
            yield i + 1, length, lines[i].strip()
        i = end + 1


def wrong_includes(path, layer, room):
    for n, line in enumerate(path.read_text().splitlines(), 1):
        m = INCLUDE.match(line)
        if not m:
            continue
        target, target_room = m.group(1), m.group(2)
        if layer in LAYERS and target != layer and target not in LAYERS[layer]:
            yield n, line
        if layer == "runtime" and target == "runtime" and room != target_room \
                and target_room not in ROOMS.get(room, set()):
            yield n, line


def main():
    found = False
    for room in ("actors", "runtime", "messages", "config"):
        for path in sorted((ROOT / room).rglob("*.[ch]pp")):
            rel = path.relative_to(ROOT)
            sub = rel.parts[1] if room == "runtime" and len(rel.parts) > 2 else None
            for line, text in wrong_includes(path, room, sub):
                print(f"{rel}:{line}: include against the layers: {text}")
                found = True
            n = len(path.read_text().splitlines())
            if n > MAX_FILE:
                print(f"{rel}: {n} lines (over {MAX_FILE})")
                found = True
            if room in ("actors", "runtime"):
                for line, length, head in long_functions(path):
                    print(f"{rel}:{line}: function of {length} lines: {head[:70]}")
                    found = True
    # Tests, benchmarks and fuzz targets: the file size rule only.
    for room in ("tests", "bench", "fuzz"):
        for path in sorted((ROOT / room).rglob("*.[ch]pp")):
            n = len(path.read_text().splitlines())
            if n > MAX_FILE:
                print(f"{path.relative_to(ROOT)}: {n} lines (over {MAX_FILE})")
                found = True
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
