"""Checks each embedded model in bfloat16 against fp32 and writes the verdict into the
"bf16" section of its build-report.json, where atelierd's `--precision auto` reads it.

bf16 here is what the server runs: grappler's oneDNN rewrite
(auto_mixed_precision_onednn_bfloat16), matrix work in bf16 with fp32 accumulation,
Softmax kept in fp32 (moved from the rewrite's infer list to its deny list, as
internal/tf does).
Each precision runs in its own process, because the rewrite is a process-wide setting.

The gates (docs/MODELS.md):
  classifier  bf16 accuracy on the 10,000 official test images within 0.3 points of
              fp32, and top-1 agreement with fp32 at least 99.5%
  detector    mAP@0.5 on held-out scenes within 1 point of fp32
  generator   conditional accuracy (judged by the fp32 classifier) within 1 point

    python -m atelier_train.precision [--only classifier] [--models-dir savedmodels]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS_DIR = os.path.dirname(HERE)

CLASSIFIER_POINTS, CLASSIFIER_AGREEMENT = 0.3, 0.995
DETECTOR_POINTS, GENERATOR_POINTS = 1.0, 1.0
DETECTOR_SCENES, GENERATOR_PER_CLASS = 200, 500


def _child(model, precision, model_dir, out):
    """Runs one model in one precision and saves what it produced to out (.npz)."""
    import tensorflow as tf
    if precision == "bf16":
        tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": True})
    if model == "classifier":
        from . import fashion_mnist
        images, labels = fashion_mnist.load("test")
        serve = tf.saved_model.load(model_dir).signatures["serving_default"]
        probs = np.concatenate([serve(images=tf.constant(images[i:i + 500, ..., None]))["probabilities"].numpy()
                                for i in range(0, len(images), 500)])
        np.savez(out, probabilities=probs, labels=labels)
    elif model == "detector":
        from . import detector_eval
        report = detector_eval.evaluate(model_dir, count=DETECTOR_SCENES)
        np.savez(out, map50=report["map50"], recall=report["recall"])
    elif model == "generator":
        from . import gan_eval
        gen = gan_eval.load(model_dir)["serving_default"]
        wanted = np.repeat(np.arange(10, dtype=np.int32), GENERATOR_PER_CLASS)
        np.savez(out, images=gan_eval.generate(gen, wanted, seed=0), wanted=wanted)


def _run(model, precision, model_dir):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.npz")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        env.setdefault("TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_INFERLIST_REMOVE", "Softmax")
        env.setdefault("TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_DENYLIST_ADD", "Softmax")
        subprocess.run([sys.executable, "-m", "atelier_train.precision", "--child", model, precision, model_dir, out],
                       check=True, cwd=MODELS_DIR, env=env)
        with np.load(out) as f:
            return {k: f[k] for k in f.files}


def check_classifier(model_dir):
    fp32, bf16 = _run("classifier", "fp32", model_dir), _run("classifier", "bf16", model_dir)
    labels = fp32["labels"]
    top32, top16 = fp32["probabilities"].argmax(1), bf16["probabilities"].argmax(1)
    acc32, acc16 = float((top32 == labels).mean()), float((top16 == labels).mean())
    agreement = float((top32 == top16).mean())
    diff = float(np.abs(fp32["probabilities"] - bf16["probabilities"]).max())
    passed = acc16 >= acc32 - CLASSIFIER_POINTS / 100 and agreement >= CLASSIFIER_AGREEMENT
    return {"fp32_accuracy": round(acc32, 4), "bf16_accuracy": round(acc16, 4),
            "top1_agreement": round(agreement, 4), "max_abs_probability_diff": round(diff, 5),
            "passed": bool(passed),
            "summary": f"accuracy {acc16:.4f} bf16 vs {acc32:.4f} fp32 (gate: within {CLASSIFIER_POINTS} points), "
                       f"top-1 agreement {agreement:.4f} (gate: {CLASSIFIER_AGREEMENT})"}


def check_detector(model_dir):
    fp32, bf16 = _run("detector", "fp32", model_dir), _run("detector", "bf16", model_dir)
    m32, m16 = float(fp32["map50"]), float(bf16["map50"])
    passed = m16 >= m32 - DETECTOR_POINTS / 100
    return {"fp32_map50": round(m32, 4), "bf16_map50": round(m16, 4),
            "fp32_recall": round(float(fp32["recall"]), 4), "bf16_recall": round(float(bf16["recall"]), 4),
            "scenes": DETECTOR_SCENES, "passed": bool(passed),
            "summary": f"mAP@0.5 {m16:.4f} bf16 vs {m32:.4f} fp32 on {DETECTOR_SCENES} held-out scenes "
                       f"(gate: within {DETECTOR_POINTS} point)"}


def check_generator(model_dir, classifier_dir):
    import tensorflow as tf
    from . import gan_eval
    fp32, bf16 = _run("generator", "fp32", model_dir), _run("generator", "bf16", model_dir)
    judge = gan_eval.load(classifier_dir)["serving_default"]  # this process runs fp32
    acc = {}
    for name, out in (("fp32", fp32), ("bf16", bf16)):
        probs = gan_eval.run_classifier(judge, "probabilities", out["images"])
        acc[name] = float((probs.argmax(1) == out["wanted"]).mean())
    diff = int(np.abs(fp32["images"].astype(int) - bf16["images"].astype(int)).max())
    passed = acc["bf16"] >= acc["fp32"] - GENERATOR_POINTS / 100
    del tf
    return {"fp32_conditional_accuracy": round(acc["fp32"], 4), "bf16_conditional_accuracy": round(acc["bf16"], 4),
            "max_abs_pixel_diff": diff, "images": int(len(fp32["wanted"])), "passed": bool(passed),
            "summary": f"conditional accuracy {acc['bf16']:.4f} bf16 vs {acc['fp32']:.4f} fp32 "
                       f"(gate: within {GENERATOR_POINTS} point)"}


def check(name, models_dir):
    model_dir = os.path.join(models_dir, name, "1")
    start = time.time()
    if name == "classifier":
        result = check_classifier(model_dir)
    elif name == "detector":
        result = check_detector(model_dir)
    else:
        result = check_generator(model_dir, os.path.join(models_dir, "classifier", "1"))
    result["cpu_flags"] = cpu_flags()
    result["seconds"] = round(time.time() - start, 1)
    path = os.path.join(model_dir, "build-report.json")
    with open(path) as f:
        report = json.load(f)
    report["bf16"] = result
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(f"[precision] {name}: {'passed' if result['passed'] else 'MISSED'}: {result['summary']}", flush=True)
    return result


def cpu_flags():
    """The CPU's bf16-related flags, as /proc/cpuinfo names them."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split(":")[1].split()
    except (OSError, StopIteration):
        return []
    return sorted(f for f in flags if f in ("amx_bf16", "amx_tile", "amx_int8", "avx512_bf16", "avx512f", "avx512_vnni"))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=["classifier", "detector", "generator"])
    parser.add_argument("--models-dir", default=MODELS_DIR)
    args = parser.parse_args()
    for name in args.only or ["classifier", "detector", "generator"]:
        check(name, args.models_dir)


if __name__ == "__main__":
    main()
