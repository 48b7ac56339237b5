"""Plots bench-reload's calls (throughput, p99 and serving version per second) and
writes its figures into docs/RELOAD.md between the figures markers.

usage: plot.py calls.csv summary.json out.png RELOAD.md"""

import csv
import json
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

calls_path, summary_path, png, doc = sys.argv[1:5]
summary = json.load(open(summary_path))
per_sec = defaultdict(list)
versions = defaultdict(set)
with open(calls_path) as f:
    for row in csv.DictReader(f):
        if row["error"]:
            continue
        s = int(float(row["t_seconds"]))
        per_sec[s].append(float(row["latency_ms"]))
        versions[s].add(int(row["version"]))
secs = sorted(per_sec)


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]


fig, ax = plt.subplots(3, 1, figsize=(10, 7), sharex=True)
ax[0].plot(secs, [len(per_sec[s]) for s in secs])
ax[0].set_ylabel("calls/s")
ax[1].plot(secs, [p99(per_sec[s]) for s in secs], color="tab:red")
ax[1].axhline(summary["steady_p99_ms"], ls="--", color="grey", label="steady p99")
ax[1].axhline(2 * summary["steady_p99_ms"], ls=":", color="grey", label="2x steady p99")
ax[1].set_ylabel("p99 ms (per second)")
ax[1].legend(loc="upper left")
ax[2].step(secs, [max(versions[s]) for s in secs], where="post", color="tab:green", label="newest version served")
ax[2].step(secs, [min(versions[s]) for s in secs], where="post", color="tab:olive", ls="--", label="oldest version served")
ax[2].set_ylabel("version")
ax[2].set_xlabel("seconds")
ax[2].legend(loc="upper left")
for a in ax:
    for s in summary["swap_seconds"]:
        a.axvline(s, color="grey", alpha=0.3)
    for s in summary.get("switch_seconds", []):
        a.axvline(s, color="tab:green", alpha=0.3, ls="--")
fig.suptitle(f"bench-reload: concurrency {summary['concurrency']}, {len(summary['swap_seconds'])} versions dropped in (grey lines), "
             "each serving from its switch (green dashes)")
fig.tight_layout()
fig.savefig(png, dpi=90)

rss = summary["rss_bytes_per_cycle"]
lines = [
    "| figure | value |",
    "| --- | --- |",
    f"| calls | {summary['calls']} |",
    f"| failed calls | {summary['failed']} |",
    f"| a connection saw an older version after a newer one | {summary['versions_moved_backwards']} times |",
    f"| steady-state p99 (before the first swap) | {summary['steady_p99_ms']:.1f} ms |",
    f"| p99 in the 10 s around the switches (pooled) | {summary['swap_window_p99_ms']:.1f} ms "
    f"({summary['swap_window_p99_ms'] / summary['steady_p99_ms']:.2f}x steady) |",
    "| p99 around each switch | " + ", ".join(f"{x:.1f}" for x in summary["per_swap_p99_ms"]) + " ms |",
    f"| version serving at the end | {summary['final_version']} |",
    f"| RSS after load/unload cycle 1 | {rss[0] / 2**20:.0f} MiB |",
    f"| RSS after cycle {summary['cycles']} | {rss[-1] / 2**20:.0f} MiB ({summary['rss_growth_first_to_last'] * 100:+.1f}%) |",
]
# Where the time goes: the p99 of each second from 5 s before each switch to 5 s after,
# beside the time from dropping the folder in to the switch (a poll, two looks at the
# folder, the load and the warm-up).
starts = []
with open(calls_path) as f:
    starts = [(float(r["t_seconds"]), float(r["latency_ms"])) for r in csv.DictReader(f) if not r["error"]]
lines += [
    "",
    "p99 (ms) of each second around each switch, steady p99 " + f"{summary['steady_p99_ms']:.1f} ms:",
    "",
    "| switch | drop to switch | " + " | ".join(f"{b:+d} s" for b in range(-5, 5)) + " |",
    "| --- | ---: | " + " | ".join("---:" for _ in range(-5, 5)) + " |",
]
for i, (sw, dr) in enumerate(zip(summary.get("switch_seconds", []), summary["swap_seconds"])):
    cells = [p99([l for t, l in starts if sw + b <= t < sw + b + 1] or [0]) for b in range(-5, 5)]
    lines.append(f"| {i + 1} | {sw - dr:.1f} s | " + " | ".join(f"{c:.0f}" for c in cells) + " |")
text = open(doc).read()
start, end = "<!-- figures: written by make bench-reload -->", "<!-- /figures -->"
i, j = text.index(start) + len(start), text.index(end)
open(doc, "w").write(text[:i] + "\n" + "\n".join(lines) + "\n" + text[j:])
print("\n".join(lines))
