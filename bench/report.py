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


BASELINES = ("tensorflow", "tensorflow-small", "raw", "raw-cpu")
SMALL = ("small-fp32", "small-bf16")


def load(path):
    rows = [json.loads(line) for line in open(path) if line.startswith("{")]
    tf = [r for r in rows if r["label"] == "tensorflow"]
    tf_small = [r for r in rows if r["label"] == "tensorflow-small"]
    raw = next((r for r in rows if r["label"] == "raw"), None)
    global RAW_CPU
    RAW_CPU = next((r for r in rows if r["label"] == "raw-cpu"), None)
    servers = {}
    for r in rows:
        if r["label"] not in BASELINES:
            servers.setdefault(r["label"], []).append(r)
    return tf, tf_small, raw, servers


def cpu_flags():
    """The CPU flags that decide bf16 and vector speed, as /proc/cpuinfo names them."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                keep = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
                return " ".join(f for f in keep if f in flags) or "none of note"
    except OSError:
        pass
    return "unknown"


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
        if label in SMALL:
            continue
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


RAW_CPU = None


def session_cpu(per_batch, mean_batch):
    """Session CPU per image at a mean batch size, interpolated between measured sizes."""
    pts = sorted((int(b), v) for b, v in per_batch.items())
    if mean_batch <= pts[0][0]:
        return pts[0][1]
    for (b0, v0), (b1, v1) in zip(pts, pts[1:]):
        if mean_batch <= b1:
            return v0 + (v1 - v0) * (mean_batch - b0) / (b1 - b0)
    return pts[-1][1]


def best_of(rows, precision):
    rows = [r for r in rows if r.get("precision", "fp32") == precision]
    return max(rows, key=lambda r: r["images_per_second"]) if rows else None


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results")
    parser.add_argument("--command", default="make bench")
    parser.add_argument("--out", default="docs/BENCHMARKS.md")
    parser.add_argument("--plot", default="docs/images/bench_throughput_latency.png")
    args = parser.parse_args()
    tf, tf_small, raw, servers = load(args.results)
    best, best16 = best_of(tf, "fp32"), best_of(tf, "bf16")
    tf1 = next(r for r in tf if r["batch"] == 1 and r.get("precision", "fp32") == "fp32")
    by = {label: {l["concurrency"]: l for l in levels} for label, levels in servers.items()}
    atelier, atelier16 = by.get("atelier", {}), by.get("atelier-bf16", {})
    python = by.get("python-grpcio", {})
    lines = []
    say = lines.append
    say("# Benchmarks\n")
    say(f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()} "
        f"(CPU flags: {cpu_flags()}), by\n")
    say(f"    {args.command}\n")
    say("which runs everything below in one go on the same SavedModel (the full 224x224x3 VGG19 "
        "classifier, `savedmodels/classifier-full/1`, 15 classes, untrained weights: speed does "
        "not depend on them) with JPEG payloads (224x224 product photos from Fashion-MNIST), then "
        "on the embedded 28x28 classifier with one PNG per request. bf16 is grappler's oneDNN "
        "bfloat16 rewrite (`--precision bf16`; Python: `auto_mixed_precision_onednn_bfloat16`). "
        "Raw numbers: `bench/results.jsonl`.\n")
    say("## TensorFlow itself (Python, `serving_default`, decoded images)\n")
    say("| precision | batch | images/s | median call (ms) |\n| --- | ---: | ---: | ---: |")
    for r in tf:
        say(f"| {r.get('precision', 'fp32')} | {r['batch']} | {r['images_per_second']:.2f} | {r['p50_ms']:.1f} |")
    say(f"\nBest fp32: batch {best['batch']}, {best['images_per_second']:.2f} images/s." +
        (f" Best bf16: batch {best16['batch']}, {best16['images_per_second']:.2f} images/s." if best16 else "") + "\n")
    say("## Servers under closed-loop load (one JPEG per request)\n")
    say("| server | concurrency | images/s | vs TF fp32 best | p50 ms | p95 ms | p99 ms | errors |")
    say("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, levels in servers.items():
        if label in SMALL:
            continue
        for l in levels:
            say(f"| {label} | {l['concurrency']} | {l['images_per_second']:.2f} | "
                f"{l['images_per_second'] / best['images_per_second']:.3f}x | {l['p50_ms']:.1f} | "
                f"{l['p95_ms']:.1f} | {l['p99_ms']:.1f} | {l['errors']} |")
    say("\n![throughput and latency](images/bench_throughput_latency.png)\n")
    if tf_small or any(label in SMALL for label in servers):
        small_best = max(tf_small, key=lambda r: r["images_per_second"]) if tf_small else None
        say("## The embedded classifier (28x28, one PNG per request)\n")
        if small_best:
            say(f"TensorFlow in Python, best batch ({small_best['batch']}): "
                f"{small_best['images_per_second']:.0f} images/s.\n")
        say("| server | concurrency | requests/s | vs TF best | p50 ms | p99 ms | errors |")
        say("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for label in SMALL:
            for l in servers.get(label, []):
                vs = f"{l['images_per_second'] / small_best['images_per_second']:.3f}x" if small_best else ""
                say(f"| {label} | {l['concurrency']} | {l['images_per_second']:.0f} | {vs} | "
                    f"{l['p50_ms']:.2f} | {l['p99_ms']:.2f} | {l['errors']} |")
        say("")
        fp32_small = servers.get("small-fp32", [])
        if RAW_CPU and any(l.get("cpu_us_per_request") for l in fp32_small):
            say("### Where the server's CPU goes per request (fp32)\n")
            say("The server's process CPU (all threads, `process_cpu_seconds_total`) per answered "
                "request, split into the TensorFlow session runs as the server measures them "
                "(`atelier_tensorflow_cpu_seconds_total`: the calling threads' CPU during each run plus "
                "all of TensorFlow's own tf_* threads), decode and resize of one PNG from an in-process "
                "calibration (`loadgen -raw-cpu`), and the rest: gRPC, protobuf, batching, copies and "
                "garbage collection. The last column is what the calibration alone predicts for the "
                "session at the mean batch the batcher formed, for comparison.\n")
            say("| concurrency | CPU per request (µs) | mean batch | session run (µs) | decode + resize (µs) | everything else (µs) | session, calibrated (µs) |")
            say("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
            for l in fp32_small:
                total, batch = l.get("cpu_us_per_request", 0), l.get("mean_batch", 1)
                calibrated = session_cpu(RAW_CPU["session_cpu_us_per_image"], batch)
                sess = l.get("session_cpu_us_per_request") or calibrated
                dec = RAW_CPU["decode_cpu_us"]
                say(f"| {l['concurrency']} | {total:.0f} | {batch:.1f} | {sess:.0f} | {dec:.0f} | "
                    f"{total - sess - dec:.0f} | {calibrated:.0f} |")
            say("\nTarget: everything else under 100 µs of CPU per request for a small PNG.\n")
    say("## Ratios\n")
    ratios = []
    if 16 in atelier:
        ratios.append(("Atelier fp32 at concurrency 16 / TensorFlow fp32 best batched",
                       atelier[16]["images_per_second"] / best["images_per_second"], ">= 0.95"))
    if 64 in atelier:
        ratios.append(("Atelier fp32 at concurrency 64 / TensorFlow fp32 best batched",
                       atelier[64]["images_per_second"] / best["images_per_second"], ">= 0.95"))
    if atelier16:
        top16 = max(atelier16.values(), key=lambda l: l["images_per_second"])
        ratios.append((f"Atelier bf16 best (concurrency {top16['concurrency']}) / TensorFlow fp32 best",
                       top16["images_per_second"] / best["images_per_second"], ">= 4 with AMX-BF16; none with only AVX512-BF16"))
        if best16:
            ratios.append((f"Atelier bf16 best (concurrency {top16['concurrency']}) / TensorFlow bf16 best",
                           top16["images_per_second"] / best16["images_per_second"], ">= 0.95 with AMX-BF16; none with only AVX512-BF16"))
        if 1 in atelier16 and 1 in atelier:
            ratios.append(("Atelier p50 at concurrency 1, bf16 / fp32",
                           atelier16[1]["p50_ms"] / atelier[1]["p50_ms"], "reported"))
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
