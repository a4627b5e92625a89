#!/usr/bin/env python3
"""Prints the markdown table of scripts/bench.sh from hyperfine's JSON exports.

  report.py ROWS RESULTS_DIR

ROWS holds one tab-separated line per table row:
  label, ours result name, baseline label, baseline result name[, ours RSS file, baseline RSS file
  [, load seconds]]
A result name N is RESULTS_DIR/N.json (hyperfine --export-json, one command), or
RESULTS_DIR/N.dnf saying why there is no figure (a baseline stopped at its time limit); an RSS
file holds the `/usr/bin/time -v` reports of every run of that command, and the table shows
their maximum. Rows with a load time (deploys that wait for the emulator's locations to load)
are also listed under the table with each tool's time beyond that load time.
"""

import json
import os
import re
import sys


def load(results, name):
    missing = os.path.join(results, f"{name}.dnf")
    if os.path.exists(missing):
        with open(missing, encoding="utf-8") as handle:
            return {"missing": handle.read().strip()}
    with open(os.path.join(results, f"{name}.json"), encoding="utf-8") as handle:
        result = json.load(handle)["results"][0]
    times = sorted(result["times"])
    return {"median": result["median"], "min": times[0], "max": times[-1], "runs": len(times)}


def seconds(value):
    if value < 1:
        return f"{value * 1000:.0f} ms" if value >= 0.0995 else f"{value * 1000:.1f} ms"
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def cell(stats):
    if "missing" in stats:
        return stats["missing"]
    return (
        f"{seconds(stats['median'])} ({seconds(stats['min'])}–{seconds(stats['max'])}, "
        f"n={stats['runs']})"
    )


def ratio(ours, base):
    if "missing" in ours:
        return "–"
    if "missing" in base:
        # A baseline stopped at its time limit: ours is faster by at least limit / ours.
        limit = re.search(r"within (\d+) (min|s)\b", base["missing"])
        if limit is None:
            return "–"
        cap = int(limit.group(1)) * (60 if limit.group(2) == "min" else 1)
        return f"**more than {cap / ours['median']:,.0f}× faster**"
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
    beyond_load = []
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
            if len(fields) > 6 and fields[6]:
                beyond_load.append((label, float(fields[6]), ours, base_label, base))
    if beyond_load:
        print()
    for label, load_time, ours, base_label, base in beyond_load:
        parts = []
        for who, stats in (("dagster-deploy", ours), (base_label, base)):
            if "missing" in stats:
                parts.append(f"{who}: {stats['missing']}")
            else:
                parts.append(f"{who}: {seconds(stats['median'] - load_time)} (median)")
        print(f"- {label}: time beyond the {seconds(load_time)} load time, {'; '.join(parts)}.")


if __name__ == "__main__":
    main()
