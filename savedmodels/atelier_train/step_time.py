"""Times one training step of the embedded classifier in float32 and in mixed bfloat16.

    python -m atelier_train.step_time [--steps 20] [--batch 128] [--widths 32,64,128,256,256] [--jit]

Builds the embedded classifier in each policy, runs a few unmeasured steps (graph
tracing, oneDNN kernel selection), then times --steps steps of random images and
prints the median milliseconds per step and the ratio. --widths sets the five conv
blocks' channels (default: the shipped model's), to price a wider net before training
it. Mixed bfloat16 only pays where the CPU has native bf16 (AMX-BF16 or AVX512-BF16);
elsewhere it is emulated and slower. --jit times float32 a second time with the step
compiled by XLA (Keras' jit_compile=True, which Keras leaves off on CPU by itself).
"""

import argparse
import statistics
import time

import numpy as np
import keras

from . import classifier, precision


def step_ms(policy, steps, batch, widths, jit=False):
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(policy)
    try:
        # classifier.build_embedded with the widths swapped (its module constant is
        # part of the model's input hash, so it is not made a parameter here).
        saved, classifier.EMBEDDED_WIDTHS = classifier.EMBEDDED_WIDTHS, widths
        try:
            model = classifier.build_embedded()
        finally:
            classifier.EMBEDDED_WIDTHS = saved
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="categorical_crossentropy", jit_compile=jit)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (batch, 28, 28, 1), dtype=np.uint8)
    y = keras.utils.to_categorical(rng.integers(0, 10, batch), 10)
    for _ in range(3):
        model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--widths", default=",".join(map(str, classifier.EMBEDDED_WIDTHS)),
                        help="channels of the five conv blocks, comma-separated")
    parser.add_argument("--jit", action="store_true", help="also time float32 compiled by XLA")
    args = parser.parse_args()
    widths = tuple(int(w) for w in args.widths.split(","))
    if len(widths) != 5:
        parser.error("--widths needs five numbers")
    flags = precision.cpu_flags()
    print(f"CPU flags: {' '.join(flags) or 'none of note'}; widths {widths}; batch {args.batch}", flush=True)
    fp32 = step_ms("float32", args.steps, args.batch, widths)
    print(f"float32        {fp32:7.1f} ms a step", flush=True)
    bf16 = step_ms("mixed_bfloat16", args.steps, args.batch, widths)
    print(f"mixed_bfloat16 {bf16:7.1f} ms a step ({fp32 / bf16:.2f}x)", flush=True)
    if args.jit:
        xla = step_ms("float32", args.steps, args.batch, widths, jit=True)
        print(f"float32, XLA   {xla:7.1f} ms a step ({fp32 / xla:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
