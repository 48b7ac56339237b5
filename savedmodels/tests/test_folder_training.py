"""The image-folder training path (atelier_train.folder) on an image folder of Fashion-MNIST.

A random-initialised VGG19 base saved with save_weights stands in for the user's
ImageNet weights file; the tests check it loads, stays frozen while the head trains,
and that only block5 moves when fine-tuning.
"""

import os
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from atelier_train import classifier, folder, image_folder

SAVEDMODELS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 48
PER_CLASS = 12
CLASSES = ["Trouser", "Bag", "Sneaker"]
FOLDERS = sorted(CLASSES)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    dest = str(tmp_path_factory.mktemp("garments"))
    assert image_folder.write_image_folder(dest, PER_CLASS, SIZE, CLASSES) == FOLDERS
    return dest


@pytest.fixture(scope="module")
def base_weights(tmp_path_factory):
    """Returns (path, weights by layer name) of a VGG19 base saved like the user's file."""
    path = str(tmp_path_factory.mktemp("weights") / "vgg19_notop.weights.h5")
    model = keras.applications.VGG19(include_top=False, weights=None,
                                     input_shape=(SIZE, SIZE, 3))
    model.save_weights(path)
    return path, _weights_by_layer(model)


def _weights_by_layer(model):
    return {layer.name: [w.numpy() for w in layer.weights]
            for layer in model.layers if layer.weights}


def _changed(before, after, names):
    return [name for name in names
            if any(not np.array_equal(b, a) for b, a in zip(before[name], after[name]))]


def _blocks(weights, prefix):
    return [name for name in weights if name.startswith(prefix)]


def test_folder_name():
    assert image_folder.folder_name("T-shirt/top") == "T-shirt_top"
    assert image_folder.folder_name("Ankle boot") == "Ankle_boot"


def test_image_folder_layout(image_dir):
    assert sorted(os.listdir(image_dir)) == FOLDERS
    for name in FOLDERS:
        files = sorted(os.listdir(os.path.join(image_dir, name)))
        assert len(files) == PER_CLASS and all(f.endswith(".jpg") for f in files)
    with Image.open(os.path.join(image_dir, "Bag", "00000.jpg")) as picture:
        assert picture.mode == "RGB" and picture.size == (SIZE, SIZE)


def test_base_loads_user_weights(base_weights):
    path, saved = base_weights
    base = folder.load_base(path, SIZE)
    assert not _changed(saved, _weights_by_layer(base), saved)


def test_head_training_keeps_base_frozen_and_fine_tuning_moves_block5(image_dir, base_weights):
    path, saved = base_weights
    names, train, val = folder.load_datasets(image_dir, SIZE, batch_size=8, val_split=0.2,
                                             seed=0)
    assert names == FOLDERS
    base = folder.load_base(path, SIZE)
    model = classifier.build_full(len(names), input_shape=(SIZE, SIZE, 3), base=base)
    head_before = _weights_by_layer(model)

    folder.train_head(model, base, train, val, epochs=1)
    assert not _changed(saved, _weights_by_layer(base), saved)
    assert _changed(head_before, _weights_by_layer(model), ["head_fc1", "head_predictions"])

    folder.fine_tune(model, base, train, val, epochs=1)
    tuned = _weights_by_layer(base)
    assert sorted(_changed(saved, tuned, saved)) == list(folder.FINETUNE_LAYERS)
    assert _blocks(saved, "block5_conv") == list(folder.FINETUNE_LAYERS)


def _read_images(image_dir):
    paths = [os.path.join(image_dir, name, "00000.jpg") for name in FOLDERS]
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])


def test_command_end_to_end(image_dir, base_weights, tmp_path):
    out = str(tmp_path / "garments" / "1")
    command = [sys.executable, "-m", "atelier_train.folder", "--data", image_dir,
               "--base-weights", base_weights[0], "--out", out, "--image-size", str(SIZE),
               "--head-epochs", "1", "--finetune-epochs", "1", "--batch-size", "8"]
    result = subprocess.run(command, cwd=SAVEDMODELS, capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr
    assert "validation accuracy" in result.stdout

    serve = tf.saved_model.load(out).signatures["serving_default"]
    (spec,) = serve.structured_input_signature[1].values()
    assert spec.name == "images" and spec.dtype == tf.uint8
    assert spec.shape.as_list() == [None, SIZE, SIZE, 3]
    (output,) = serve.structured_outputs.items()
    assert output[0] == "probabilities" and output[1].dtype == tf.float32
    assert output[1].shape.as_list() == [None, len(FOLDERS)]
    with open(os.path.join(out, "assets", "labels.txt"), encoding="utf-8") as f:
        assert f.read().splitlines() == FOLDERS

    images = _read_images(image_dir)
    probabilities = serve(images=tf.constant(images))["probabilities"].numpy()
    assert probabilities.shape == (len(FOLDERS), len(FOLDERS))
    np.testing.assert_allclose(np.sum(probabilities, axis=1), 1.0, atol=1e-5)
    _check_served(str(tmp_path), images, probabilities)


def _check_served(model_dir, images, want):
    """Serves the trained model with bin/atelierd and checks it answers like Python."""
    root = os.path.dirname(SAVEDMODELS)
    binary = os.path.join(root, "bin", "atelierd")
    if not os.path.exists(binary):
        if os.environ.get("CI") == "true":
            pytest.fail("bin/atelierd is missing under CI=true (run `make build`)")
        pytest.skip("bin/atelierd is missing; run `make build`")
    from atelier import AtelierClient
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        addr = f"127.0.0.1:{s.getsockname()[1]}"
    proc = subprocess.Popen([binary, "--listen", addr, "--model-dir", model_dir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with AtelierClient(addr, timeout=5) as client:
            deadline = time.time() + 60
            while True:
                try:
                    if client.health() == "SERVING":
                        break
                except Exception:
                    pass
                assert proc.poll() is None and time.time() < deadline, "atelierd did not start"
                time.sleep(0.2)
            got = np.zeros_like(want)
            # Raw frames carry exactly the pixels Python used, so the answers must agree.
            for i, preds in enumerate(client.classify(list(images), top_k=len(FOLDERS), model="garments")):
                for p in preds:
                    got[i, p.class_index] = p.score
            assert [p.label for p in client.classify(images[0], top_k=3, model="garments")[0]][0] \
                == FOLDERS[int(np.argmax(want[0]))]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    np.testing.assert_allclose(got, want, atol=1e-5)


def _cli_error(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        folder.main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_missing_weights_file_names_the_standard_file(image_dir, tmp_path, capsys):
    err = _cli_error(capsys, ["--data", image_dir, "--base-weights", str(tmp_path / "no.h5"),
                              "--out", str(tmp_path / "m" / "1"), "--image-size", str(SIZE)])
    assert "not found" in err and folder.WEIGHTS_FILE in err and folder.WEIGHTS_URL in err
    assert not os.path.exists(tmp_path / "m")


def test_missing_folder(base_weights, tmp_path, capsys):
    err = _cli_error(capsys, ["--data", str(tmp_path / "absent"),
                              "--base-weights", base_weights[0],
                              "--out", str(tmp_path / "m" / "1"), "--image-size", str(SIZE)])
    assert "does not exist" in err


def test_single_category(image_dir, tmp_path):
    os.symlink(os.path.join(image_dir, "Bag"), tmp_path / "Bag")
    with pytest.raises(folder.FolderError, match="at least 2"):
        folder.categories(str(tmp_path))


def test_category_without_images(image_dir, tmp_path):
    os.symlink(os.path.join(image_dir, "Bag"), tmp_path / "Bag")
    os.makedirs(tmp_path / "Coat")
    with pytest.raises(folder.FolderError, match="without images.*Coat"):
        folder.categories(str(tmp_path))


def test_image_size_below_vgg19_minimum(capsys):
    err = _cli_error(capsys, ["--data", "d", "--base-weights", "w", "--out", "o",
                              "--image-size", "16"])
    assert "at least 32" in err
