"""TensorFlow itself on the benchmark SavedModel: the same signature the server calls.

For each batch size, calls serving_default on decoded uint8 images for a fixed time and
prints one JSON line with images per second and the median latency of a call. This is
the ceiling the server is measured against: no decoding, no RPC, just the model.

    python bench/tf_baseline.py --model savedmodels/classifier-full/1 --batch-sizes 1,4,8,16,32 [--precision bf16]

--precision bf16 turns on grappler's oneDNN bfloat16 rewrite, the strongest
configuration TensorFlow offers on a CPU with native bf16 and the one atelierd's
--precision bf16 uses.
"""

import argparse
import json
import os
import time

import numpy as np
import tensorflow as tf


def measure(serve, shape, batch, seconds, precision, label):
    images = tf.constant(np.random.default_rng(0).integers(0, 256, (batch,) + shape, dtype=np.uint8))
    for _ in range(2):
        serve(images=images)
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        serve(images=images)["probabilities"].numpy()
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    return {"label": label, "precision": precision, "batch": batch, "calls": len(times),
            "images_per_second": len(times) * batch / total,
            "p50_ms": float(np.median(times) * 1000)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch-sizes", default="1,4,8,16,32")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--label", default="tensorflow", help="label of the output lines")
    args = parser.parse_args()
    if args.precision == "bf16":
        tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": True})
        # Softmax stays fp32, as in atelierd (internal/tf); set before the first run.
        os.environ.setdefault("TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_INFERLIST_REMOVE", "Softmax")
        os.environ.setdefault("TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_DENYLIST_ADD", "Softmax")
    serve = tf.saved_model.load(args.model).signatures["serving_default"]
    shape = tuple(serve.structured_input_signature[1]["images"].shape[1:])
    for b in (int(x) for x in args.batch_sizes.split(",")):
        print(json.dumps(measure(serve, shape, b, args.seconds, args.precision, args.label)), flush=True)


if __name__ == "__main__":
    main()
