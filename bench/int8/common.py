"""Shared pieces of bench/int8 (run by run.sh, in .venv or in the INC venv): the
repository's paths, Fashion-MNIST through atelier_train's loader, a SavedModel in its
own TF1 session as atelierd runs it through the C API (TF_LoadSessionFromSavedModel,
then Session.Run, its own ConfigProto), timing and the CPU flags."""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# bf16 as internal/tf runs it: Softmax moved from the rewrite's infer list to its deny
# list (grappler reads these once per process, so before TensorFlow is imported).
os.environ.setdefault("TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_INFERLIST_REMOVE", "Softmax")
os.environ.setdefault("TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_DENYLIST_ADD", "Softmax")

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FP32_DIR = os.path.join(ROOT, "savedmodels", "classifier", "1")
sys.path.insert(0, os.path.join(ROOT, "savedmodels"))
from atelier_train import fashion_mnist  # noqa: E402  (numpy only)

# The two flip branches of the classifier's serving_default end here (before the mean).
BRANCH_OUT = "StatefulPartitionedCall/vgg19_embedded_1/head_predictions_1/Softmax:0"


def load(split):
    """(images uint8 [N,28,28,1], labels uint8 [N]) for 'train' or 'test'."""
    x, y = fashion_mnist.load(split)
    return np.ascontiguousarray(x[..., None]), y


def calib_images(n_images, seed=0):
    """n_images random training images (uint8 [n,28,28,1]), the calibration set."""
    x, _ = load("train")
    return x[np.random.default_rng(seed).choice(len(x), n_images, replace=False)]


def save_signature(sess, inp, out, path):
    """Saves sess's graph as a SavedModel whose serving_default maps images -> probabilities."""
    import shutil
    import tensorflow as tf
    shutil.rmtree(path, ignore_errors=True)
    sig = tf.compat.v1.saved_model.signature_def_utils.predict_signature_def(
        {"images": inp}, {"probabilities": out})
    b = tf.compat.v1.saved_model.builder.SavedModelBuilder(path)
    b.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={"serving_default": sig})
    b.save()


class SessModel:
    """One SavedModel in its own tf.compat.v1 Session with its own ConfigProto."""

    def __init__(self, model_dir, bf16=False):
        import tensorflow as tf
        from tensorflow.core.protobuf import rewriter_config_pb2
        cfg = tf.compat.v1.ConfigProto()
        if bf16:
            cfg.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = \
                rewriter_config_pb2.RewriterConfig.ON
        self.graph = tf.Graph()
        self.sess = tf.compat.v1.Session(graph=self.graph, config=cfg)
        meta = tf.compat.v1.saved_model.loader.load(self.sess, ["serve"], model_dir)
        sig = meta.signature_def["serving_default"]
        self.inp = self.graph.get_tensor_by_name(sig.inputs["images"].name)
        self.out = self.graph.get_tensor_by_name(sig.outputs["probabilities"].name)

    def __call__(self, x):
        return self.sess.run(self.out, {self.inp: x})


def predict_all(m, x, batch=500):
    return np.concatenate([m(x[i:i + batch]) for i in range(0, len(x), batch)])


def time_batches(m, x, batch, iters):
    """Seconds for `iters` runs at `batch` (inputs cycled from x)."""
    feeds = [x[i * batch:(i + 1) * batch] for i in range(min(len(x) // batch, 50))]
    t = time.perf_counter()
    for i in range(iters):
        m(feeds[i % len(feeds)])
    return time.perf_counter() - t


def cpu_flags():
    """The flags that decide int8 and bf16 speed: avx512_vnni, avx512_bf16, amx_*, avx_vnni."""
    with open("/proc/cpuinfo") as f:
        flags = next(l for l in f if l.startswith("flags")).split(":")[1].split()
    return sorted(f for f in flags if f in ("avx512_vnni", "avx512_bf16", "avx_vnni") or f.startswith("amx"))


def cpu_model():
    with open("/proc/cpuinfo") as f:
        return next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
