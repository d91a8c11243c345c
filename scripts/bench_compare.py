#!/usr/bin/env python3
"""Names the figures of a new benchmark run that are worse than the
previous recorded run's by more than a threshold (5 % by default).

    bench_compare.py OLD.md NEW.md [--threshold 5]

OLD.md is docs/benchmarks.md (its "Latest run" section between the
bench:begin/bench:end markers is the previous run); NEW.md is the new
section. Prints a markdown paragraph for the new section: which run it
compares against and each figure that regressed, so that the reason can be
written down beside it (docs/benchmarks.md: no figure regresses by more
than 5 % without a written reason).
"""
import re
import sys

HIGHER_IS_BETTER = {"jobs/s", "msg/s", "rows/s"}
SECTION = re.compile(r"<!-- bench:begin.*?<!-- bench:end -->", re.S)


def figures(text):
    """{(scenario, measure): (median, unit)} from the run's main table."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 7 or cells[0] in ("scenario", "---"):
            continue
        try:
            median = float(cells[2].replace(",", ""))
        except ValueError:
            continue
        out[(cells[0], cells[1])] = (median, cells[5])
    return out


def header(text):
    """The previous run's date, machine and command lines."""
    return [l[2:] for l in text.splitlines()
            if l.startswith("- date:") or l.startswith("- machine:")]


def regressions(old, new, threshold):
    worse = []
    for key, (now, unit) in new.items():
        if key not in old or old[key][1] != unit or old[key][0] == 0:
            continue
        before = old[key][0]
        change = (now - before) / before * 100
        bad = -change if unit in HIGHER_IS_BETTER else change
        if bad > threshold:
            worse.append((key, before, now, unit, change))
    return worse


def main(argv):
    threshold = 5.0
    if "--threshold" in argv:
        threshold = float(argv[argv.index("--threshold") + 1])
    old_doc = open(argv[1]).read()
    new = figures(open(argv[2]).read())
    m = SECTION.search(old_doc)
    if not m:
        print("No previous recorded run to compare against.")
        return 0
    old_text = m.group(0)
    worse = regressions(figures(old_text), new, threshold)
    print("Against the previous recorded run (" + "; ".join(header(old_text))
          + "): " + (f"{len(worse)} figures worse by more than "
                     f"{threshold:g} %." if worse else
                     f"no figure worse by more than {threshold:g} %."))
    if worse:
        print()
        for (scenario, measure), before, now, unit, change in worse:
            print(f"- {scenario}, {measure}: {before:g} → {now:g} {unit} "
                  f"({change:+.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
