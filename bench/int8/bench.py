"""Side-by-side accuracy and speed of the classifier's five variants in one process,
each in its own tf.compat.v1 Session (as atelierd runs a model through the C API):

  fp32         savedmodels/classifier/1 as shipped
  bf16         the same with grappler's auto_mixed_precision_onednn_bfloat16 (Softmax fp32)
  fp32-single  the single-branch rewrite (make_single.py)
  bf16-single  the same with the bf16 rewrite
  int8         the single-branch rewrite quantized by INC (quantize.py)

Accuracy on the 10,000 test images, top-1 agreement with fp32 and the project's bf16
gate (atelier_train/precision.py) applied to int8. Speed: for each batch size every
model is warmed up, then timed in turn inside each repeat (interleaved, the order
rotating), images/s being the median (min-max) over repeats. Prints a markdown table
and writes the raw numbers to RESULTS/<UTC stamp>.json. Exits 1 when int8 fails the gate.
    .venv/bin/python bench/int8/bench.py --fp32-single DIR --int8 DIR [--reps 5] [--batches 1,16,64]"""

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time

import common  # environment first
import numpy as np
import tensorflow as tf
from atelier_train.precision import CLASSIFIER_AGREEMENT, CLASSIFIER_POINTS

ITERS = {1: 400, 16: 200, 64: 100}  # runs a repeat; other sizes get 6400 images' worth

ap = argparse.ArgumentParser()
ap.add_argument("--fp32-single", required=True)
ap.add_argument("--int8", required=True)
ap.add_argument("--reps", type=int, default=5)
ap.add_argument("--batches", default="1,16,64")
ap.add_argument("--results", default=os.path.join(common.ROOT, ".build", "int8", "results"))
args = ap.parse_args()
batches = [int(b) for b in args.batches.split(",")]

specs = [("fp32", common.FP32_DIR, False), ("bf16", common.FP32_DIR, True),
         ("fp32-single", args.fp32_single, False), ("bf16-single", args.fp32_single, True),
         ("int8", args.int8, False)]
stamp = time.gmtime()
res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", stamp), "tf": tf.__version__, "python": platform.python_version(),
       "cpu": common.cpu_model(), "nproc": os.cpu_count(), "cpu_flags": common.cpu_flags(),
       "loadavg_start": [round(v, 2) for v in os.getloadavg()], "reps": args.reps,
       "gate": {"points": CLASSIFIER_POINTS, "agreement": CLASSIFIER_AGREEMENT}, "models": {}}
print(f"    {res['date']}, {res['cpu']}, {res['nproc']} cores, flags: {' '.join(res['cpu_flags']) or 'none'}, "
      f"load average {' '.join(f'{v:.2f}' for v in res['loadavg_start'])}", flush=True)

x, y = common.load("test")
models = {}
for name, d, bf in specs:
    t = time.time()
    m = common.SessModel(d, bf16=bf)
    p = common.predict_all(m, x)  # also the warm-up at batch 500
    models[name] = m
    r = {"dir": os.path.relpath(d, common.ROOT), "bf16_rewrite": bf, "accuracy": float((p.argmax(1) == y).mean())}
    if name == "fp32":
        p32 = p
    else:
        r["top1_agreement"] = float((p.argmax(1) == p32.argmax(1)).mean())
        r["max_abs_probability_diff"] = float(np.abs(p - p32).max())
        r["gate_passed"] = bool(r["accuracy"] >= res["models"]["fp32"]["accuracy"] - CLASSIFIER_POINTS / 100
                                and r["top1_agreement"] >= CLASSIFIER_AGREEMENT)
    res["models"][name] = r
    print(f"    [accuracy] {name:11s} {r['accuracy']:.4f}" + (
        f"  agreement {r['top1_agreement']:.4f}  max |dp| {r['max_abs_probability_diff']:.4f}"
        if name != "fp32" else "") + f"  ({time.time() - t:.1f}s load + 10,000 images)", flush=True)

i8, f32 = res["models"]["int8"], res["models"]["fp32"]
verdict = (f"int8 {'PASSES' if i8['gate_passed'] else 'FAILS'} the classifier's bf16 gate: accuracy "
           f"{i8['accuracy']:.4f} vs {f32['accuracy']:.4f} fp32 (gate: within {CLASSIFIER_POINTS} points), "
           f"top-1 agreement {i8['top1_agreement']:.4f} (gate: {CLASSIFIER_AGREEMENT})")
res["verdict"] = verdict
print("    " + verdict, flush=True)
if res["models"]["fp32-single"]["max_abs_probability_diff"] > 1e-4:
    print("    WARNING: fp32-single differs from fp32 by more than rounding: the rewrite changed the function",
          flush=True)

order = list(models)
for b in batches:
    it = ITERS.get(b, max(6400 // b, 10))
    for m in models.values():
        common.time_batches(m, x, b, 20)
    secs = {n: [] for n in models}
    for rep in range(args.reps):
        for name in order[rep % len(order):] + order[:rep % len(order)]:
            secs[name].append(common.time_batches(models[name], x, b, it))
    for name in models:
        ips = [b * it / s for s in secs[name]]
        res["models"][name].setdefault("images_per_s", {})[str(b)] = {
            "median": round(statistics.median(ips), 1), "min": round(min(ips), 1), "max": round(max(ips), 1),
            "runs_per_rep": it}
    print(f"    [speed] batch {b}: " + ", ".join(
        f"{n} {res['models'][n]['images_per_s'][str(b)]['median']:.0f}" for n in models) + " images/s", flush=True)
res["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]


def ips(name, b):
    return res["models"][name]["images_per_s"][str(b)]["median"]


cmd = " ".join([f"{k}={shlex.quote(v)}" for k, v in sorted(os.environ.items()) if k.startswith("INT8_")]
               + ["bench/int8/run.sh"])
lines = [f"Measured {res['date']} on {res['nproc']} cores, {res['cpu']} (CPU flags: "
         f"{' '.join(res['cpu_flags']) or 'none of avx512_vnni, avx512_bf16, amx_*'}), TensorFlow {res['tf']}, "
         f"load average {res['loadavg_start'][0]:.2f} at the start and {res['loadavg_end'][0]:.2f} at the end, by",
         "", f"    {cmd}", "",
         f"images/s, median (min-max) of {args.reps} interleaved repeats", "",
         "| model | accuracy | top-1 agreement with fp32 | " + " | ".join(f"batch {b}" for b in batches) + " |",
         "| --- | ---: | ---: | " + " | ".join("---:" for _ in batches) + " |"]
for name, r in res["models"].items():
    cells = [f"{r['images_per_s'][str(b)]['median']:.0f} ({r['images_per_s'][str(b)]['min']:.0f}-"
             f"{r['images_per_s'][str(b)]['max']:.0f})" for b in batches]
    lines.append(f"| {name} | {r['accuracy']:.4f} | {r.get('top1_agreement', 1.0):.4f} | " + " | ".join(cells) + " |")
ratios = [("int8 / best of fp32, bf16 (shipped paths)", "int8", ("fp32", "bf16")),
          ("int8 / best of fp32-single, bf16-single", "int8", ("fp32-single", "bf16-single")),
          ("fp32-single / fp32 (the rewrite alone)", "fp32-single", ("fp32",)),
          ("bf16-single / bf16 (the rewrite alone)", "bf16-single", ("bf16",))]
for label, num, dens in ratios:
    lines.append(f"| {label} | | | " + " | ".join(f"{ips(num, b) / max(ips(d, b) for d in dens):.2f}x"
                                                  for b in batches) + " |")
lines += ["", verdict + "."]
res["table"] = "\n".join(lines)
print("\n" + res["table"] + "\n")

os.makedirs(args.results, exist_ok=True)
path = os.path.join(args.results, time.strftime("%Y%m%d-%H%M%S", stamp) + ".json")
with open(path, "w") as f:
    json.dump(res, f, indent=2)
print(f"    wrote {os.path.relpath(path, common.ROOT)}")
sys.exit(0 if i8["gate_passed"] else 1)
