"""Turns one benchmark run's JSON lines into docs/BENCHMARKS.md and a plot.

    python bench/report.py RESULTS.jsonl --command "make bench" --out docs/BENCHMARKS.md
"""

import argparse
import json
import os
import platform
import subprocess
from datetime import datetime, timezone

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    rows = [json.loads(line) for line in open(path) if line.startswith("{")]
    tf = [r for r in rows if r["label"] == "tensorflow"]
    raw = next((r for r in rows if r["label"] == "raw"), None)
    servers = {}
    for r in rows:
        if r["label"] not in ("tensorflow", "raw"):
            servers.setdefault(r["label"], []).append(r)
    return tf, raw, servers


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}"


def plot(servers, tf_best, out):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, levels in servers.items():
        xs = [l["images_per_second"] for l in levels]
        ys = [l["p50_ms"] for l in levels]
        ax.plot(xs, ys, marker="o", label=label)
        for l in levels:
            ax.annotate(f"c={l['concurrency']}", (l["images_per_second"], l["p50_ms"]),
                        textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.axvline(tf_best["images_per_second"], color="grey", linestyle="--",
               label=f"TensorFlow best (batch {tf_best['batch']})")
    ax.set_xlabel("throughput (images/s)")
    ax.set_ylabel("median latency (ms)")
    ax.set_yscale("log")
    ax.set_title("VGG19 224x224, one JPEG per request")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results")
    parser.add_argument("--command", default="make bench")
    parser.add_argument("--out", default="docs/BENCHMARKS.md")
    parser.add_argument("--plot", default="docs/images/bench_throughput_latency.png")
    args = parser.parse_args()
    tf, raw, servers = load(args.results)
    best = max(tf, key=lambda r: r["images_per_second"])
    tf1 = next(r for r in tf if r["batch"] == 1)
    atelier = {l["concurrency"]: l for l in servers.get("atelier", [])}
    python = {l["concurrency"]: l for l in servers.get("python-grpcio", [])}
    lines = []
    say = lines.append
    say("# Benchmarks\n")
    say(f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}, by\n")
    say(f"    {args.command}\n")
    say("which runs everything below in one go on the same SavedModel (the full 224x224x3 VGG19 "
        "classifier, `savedmodels/classifier-full/1`, 15 classes, untrained weights: speed does "
        "not depend on them) with JPEG payloads (224x224 product photos from Fashion-MNIST). "
        "Raw numbers: `bench/results.jsonl`.\n")
    say("## TensorFlow itself (Python, `serving_default`, decoded images)\n")
    say("| batch | images/s | median call (ms) |\n| ---: | ---: | ---: |")
    for r in tf:
        say(f"| {r['batch']} | {r['images_per_second']:.2f} | {r['p50_ms']:.1f} |")
    say(f"\nBest: batch {best['batch']}, {best['images_per_second']:.2f} images/s.\n")
    say("## Servers under closed-loop load (one JPEG per request)\n")
    say("| server | concurrency | images/s | vs TF best | p50 ms | p95 ms | p99 ms | errors |")
    say("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, levels in servers.items():
        for l in levels:
            say(f"| {label} | {l['concurrency']} | {l['images_per_second']:.2f} | "
                f"{l['images_per_second'] / best['images_per_second']:.3f}x | {l['p50_ms']:.1f} | "
                f"{l['p95_ms']:.1f} | {l['p99_ms']:.1f} | {l['errors']} |")
    say("\n![throughput and latency](images/bench_throughput_latency.png)\n")
    say("## Ratios\n")
    ratios = []
    if 16 in atelier:
        ratios.append(("Atelier at concurrency 16 / TensorFlow best batched",
                       atelier[16]["images_per_second"] / best["images_per_second"], ">= 0.95"))
    if 64 in atelier:
        ratios.append(("Atelier at concurrency 64 / TensorFlow best batched",
                       atelier[64]["images_per_second"] / best["images_per_second"], ">= 0.95"))
    if 16 in atelier and 16 in python:
        ratios.append(("Atelier / Python grpcio server, concurrency 16",
                       atelier[16]["images_per_second"] / python[16]["images_per_second"], ">= 2"))
    if 1 in atelier and raw:
        ratios.append(("Atelier p50 at concurrency 1 / (raw decode + session run)",
                       atelier[1]["p50_ms"] / raw["total_ms"], "<= 1.03"))
    ratios.append(("TensorFlow batch 1 / TensorFlow best", tf1["images_per_second"] / best["images_per_second"], ""))
    say("| ratio | measured | target |\n| --- | ---: | --- |")
    for name, value, target in ratios:
        say(f"| {name} | {value:.3f} | {target} |")
    if raw:
        say(f"\nRaw in-process path (Go, no gRPC, no batching), median of {raw['runs']}: "
            f"decode+resize {raw['decode_ms']:.2f} ms, session run {raw['run_ms']:.1f} ms, "
            f"total {raw['total_ms']:.1f} ms.\n")
    text = "\n".join(lines) + "\n"
    extra = os.path.join(os.path.dirname(args.out), "BENCHMARKS.notes.md")
    if os.path.exists(extra):
        text += "\n" + open(extra).read()
    open(args.out, "w").write(text)
    plot(servers, best, args.plot)
    print("\n".join(f"{name}: {value:.3f} (target {target})" for name, value, target in ratios))


if __name__ == "__main__":
    main()
