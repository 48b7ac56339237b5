"""Intel Neural Compressor (neural-compressor-tf 3.x) static post-training quantization
of the single-branch fp32 classifier: int8 weights per output channel, symmetric int8
activations (min-max), calibrated on random training images. Runs in the INC venv:
    .build/int8/venv/bin/python bench/int8/quantize.py [--calib 1024] SRC_DIR OUT_DIR
Writes OUT_DIR: INC's frozen int8 graph (fused oneDNN ops that stock TensorFlow runs)
under the server's signature names, serving_default images -> probabilities.

INC reports success whatever it made of the graph, so this checks what it made: a
convolution or matrix product still in float means it left part of the network
unquantized (or quantized the wrong thing), and the script fails."""

import argparse
import collections
import time

import common  # environment first
import tensorflow as tf
from neural_compressor.tensorflow import StaticQuantConfig, quantize_model
from neural_compressor.tensorflow.utils import BaseDataLoader

FLOAT_MATH = {"Conv2D", "MatMul", "BatchMatMulV2", "DepthwiseConv2dNative", "_FusedConv2D", "_FusedMatMul"}
BATCH = 32

ap = argparse.ArgumentParser()
ap.add_argument("--calib", type=int, default=1024, help="calibration images (a multiple of 32)")
ap.add_argument("src")
ap.add_argument("out")
args = ap.parse_args()

x_cal = common.calib_images(args.calib)


class Images:  # one image a item; BaseDataLoader batches them (labels unused)
    def __getitem__(self, i):
        return x_cal[i], 0

    def __len__(self):
        return len(x_cal)


cfg = StaticQuantConfig(weight_granularity="per_channel", act_sym=True)
t = time.time()
q = quantize_model(args.src, cfg, BaseDataLoader(dataset=Images(), batch_size=BATCH),
                   calib_iteration=-(-args.calib // BATCH))
print(f"    quantized in {time.time() - t:.1f}s (tf {tf.__version__})", flush=True)

ops = collections.Counter(n.op for n in q.graph_def.node)
left = {op: k for op, k in ops.items() if op in FLOAT_MATH}
quantized = {op: k for op, k in ops.items() if "Quantized" in op and op not in ("QuantizeV2", "Dequantize")}
print("    int8 ops:", ", ".join(f"{k} {op}" for op, k in sorted(quantized.items())), flush=True)
if left or not quantized:
    raise SystemExit(f"int8 graph keeps float convolutions or matrix products ({left}) or has no quantized op: "
                     "INC did not quantize the whole network")

with tf.compat.v1.Session(graph=tf.Graph()) as sess:
    tf.import_graph_def(q.graph_def, name="")
    g = sess.graph
    common.save_signature(sess, g.get_tensor_by_name(q.input_tensor_names[0].split(":")[0] + ":0"),
                          g.get_tensor_by_name(q.output_tensor_names[0].split(":")[0] + ":0"), args.out)
print(f"    wrote {args.out}", flush=True)
