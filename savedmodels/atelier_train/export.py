"""Writes SavedModels with explicit serving signatures and label assets.

Models are exported with Keras's ExportArchive rather than tf.saved_model.save on a
tf.Module: the server loads SavedModels through the TensorFlow C API (a TF1-style
session, as TensorFlow Serving does), and only ExportArchive's export restores Keras 3
variables there. A tf.Module export loads in Python but fails in a session with
"Could not find variable ...".
"""

import os
import shutil
import tempfile

import keras


def save(tracked, endpoints, out_dir, labels=None):
    """Exports to out_dir atomically.

    tracked is the Keras model (or list of models) whose variables the endpoints use;
    endpoints maps a signature name to (function, input_signature). labels, if given,
    are written to assets/labels.txt, one per line. The model is written to a temporary
    folder beside out_dir and renamed into place, so a crash mid-export never leaves a
    half-written version for the server to load.
    """
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        archive = keras.export.ExportArchive()
        for model in tracked if isinstance(tracked, (list, tuple)) else [tracked]:
            archive.track(model)
        for name, (fn, signature) in endpoints.items():
            archive.add_endpoint(name=name, fn=fn, input_signature=signature)
        archive.write_out(tmp, verbose=False)
        if labels is not None:
            os.makedirs(os.path.join(tmp, "assets"), exist_ok=True)
            with open(os.path.join(tmp, "assets", "labels.txt"), "w", encoding="utf-8") as f:
                f.write("\n".join(labels) + "\n")
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; models are read by the server
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.rename(tmp, out_dir)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    return out_dir
