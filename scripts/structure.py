#!/usr/bin/env python3
"""Reports what the structure rules of docs/architecture.md forbid: files over
500 lines and functions over 80 lines in actors/ and runtime/ (tests aside).
A function may be longer when a comment within the 3 lines above it says
why ("long: ..."). Exit status 1 if anything is reported.

The function finder is a heuristic made for this tree's clang-format style:
a definition starts at column 0 and ends at the first `}` in column 0."""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAX_FILE, MAX_FUNCTION = 500, 80
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


def main():
    found = False
    for room in ("actors", "runtime", "messages", "config"):
        for path in sorted((ROOT / room).rglob("*.[ch]pp")):
            rel = path.relative_to(ROOT)
            n = len(path.read_text().splitlines())
            if n > MAX_FILE:
                print(f"{rel}: {n} lines (over {MAX_FILE})")
                found = True
            if room in ("actors", "runtime"):
                for line, length, head in long_functions(path):
                    print(f"{rel}:{line}: function of {length} lines: {head[:70]}")
                    found = True
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
