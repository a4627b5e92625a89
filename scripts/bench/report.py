#!/usr/bin/env python3
"""Prints the markdown table of scripts/bench.sh from hyperfine's JSON exports.

  report.py ROWS RESULTS_DIR

ROWS holds one tab-separated line per table row:
  label, ours result name, baseline label, baseline result name[, ours RSS file, baseline RSS file]
A result name N is RESULTS_DIR/N.json (hyperfine --export-json, one command); an RSS file holds
the `/usr/bin/time -v` reports of every run of that command, and the table shows their maximum.
"""

import json
import os
import re
import sys


def load(results, name):
    with open(os.path.join(results, f"{name}.json"), encoding="utf-8") as handle:
        result = json.load(handle)["results"][0]
    times = sorted(result["times"])
    return {"median": result["median"], "min": times[0], "max": times[-1], "runs": len(times)}


def seconds(value):
    if value < 1:
        return f"{value * 1000:.0f} ms" if value >= 0.0995 else f"{value * 1000:.1f} ms"
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def cell(stats):
    return (
        f"{seconds(stats['median'])} ({seconds(stats['min'])}–{seconds(stats['max'])}, "
        f"n={stats['runs']})"
    )


def ratio(ours, base):
    factor = base["median"] / ours["median"]
    if abs(factor - 1) < 0.05:
        return f"same ({factor:.2f}×)"
    if factor > 1:
        return f"**{factor:.1f}× faster**"
    return f"{1 / factor:.1f}× slower"


def peak_rss(path):
    if not path or not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        values = [int(v) for v in re.findall(r"Maximum resident set size \(kbytes\): (\d+)", handle.read())]
    return max(values) / 1024 if values else None


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    rows, results = sys.argv[1], sys.argv[2]
    print("| benchmark | dagster-deploy median (min–max) | baseline | baseline median (min–max) "
          "| dagster-deploy vs baseline | peak RSS MiB (ours / baseline) |")
    print("|---|---|---|---|---|---|")
    with open(rows, encoding="utf-8") as handle:
        for line in handle:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 4:
                continue
            label, ours_name, base_label, base_name = fields[:4]
            ours, base = load(results, ours_name), load(results, base_name)
            rss_ours = peak_rss(fields[4] if len(fields) > 4 else "")
            rss_base = peak_rss(fields[5] if len(fields) > 5 else "")
            rss = "–"
            if rss_ours is not None or rss_base is not None:
                rss = " / ".join("–" if v is None else f"{v:.0f}" for v in (rss_ours, rss_base))
            print(f"| {label} | {cell(ours)} | {base_label} | {cell(base)} | {ratio(ours, base)} | {rss} |")


if __name__ == "__main__":
    main()
