"""Rewrites the classifier's serving_default into a frozen graph whose two flip branches
(one on the images, one on their mirror images, sharing weights; INC quantizes that
graph wrongly and says nothing) become one branch run on a batch of 2N:
concat(images, mirrored images) -> network -> mean of the two halves. Same function,
same fp32 arithmetic. Runs in the INC venv (its frozen, inlined fp32 graph is the
starting point):
    .build/int8/venv/bin/python bench/int8/make_single.py OUT_DIR
Writes OUT_DIR (serving_default only: images -> probabilities)."""

import sys

import common  # environment first
import numpy as np
import tensorflow as tf
from neural_compressor.tensorflow.utils import Model

out = sys.argv[1]
gd = Model(common.FP32_DIR).graph_def  # frozen, functions inlined
g = tf.Graph()
with g.as_default():
    images = tf.compat.v1.placeholder(tf.uint8, [None, 28, 28, 1], name="images_in")
    pair = tf.concat([images, tf.reverse(images, axis=[2])], 0, name="flip_pair")
    (p,) = tf.import_graph_def(gd, input_map={"images:0": pair}, return_elements=[common.BRANCH_OUT], name="m")
    n = tf.shape(images)[0]
    tf.identity((p[:n] + p[n:]) / 2, name="probabilities")
    pruned = tf.compat.v1.graph_util.extract_sub_graph(g.as_graph_def(), ["probabilities"])
with tf.compat.v1.Session(graph=tf.Graph()) as s:
    tf.import_graph_def(pruned, name="")
    i, o = s.graph.get_tensor_by_name("images_in:0"), s.graph.get_tensor_by_name("probabilities:0")
    x, y = common.load("test")
    pr = np.concatenate([s.run(o, {i: x[k:k + 500]}) for k in range(0, 2000, 500)])
    print(f"    single-branch fp32: accuracy {(pr.argmax(1) == y[:2000]).mean():.4f} on the first 2,000 "
          f"test images (the whole set and the comparison with fp32 come in step 4)", flush=True)
    common.save_signature(s, i, o, out)
print(f"    wrote {out}: {len(pruned.node)} nodes", flush=True)
