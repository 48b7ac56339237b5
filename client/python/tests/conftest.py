"""Starts a real atelierd (bin/atelierd, built by `make build`) on a loopback port."""

import gzip
import os
import socket
import subprocess
import time

import numpy as np
import pytest

from atelier import AtelierClient

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CI = os.environ.get("CI") == "true"


def missing(what, fix):
    """Fails under CI=true, skips elsewhere."""
    if CI:
        pytest.fail(f"{what} is missing under CI=true ({fix})")
    pytest.skip(f"{what} is missing; {fix}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def model_dir():
    d = os.path.join(ROOT, "savedmodels")
    if not os.path.exists(os.path.join(d, "classifier", "1", "saved_model.pb")):
        missing("the built classifier", "run `make models`")
    return d


def atelierd(args, log_name, ready):
    """Starts bin/atelierd with args, waits until ready(addr) is true, yields its
    address and stops it. The log goes to .build/<log_name>."""
    binary = os.path.join(ROOT, "bin", "atelierd")
    if not os.path.exists(binary):
        missing("bin/atelierd", "run `make build`")
    addr = f"127.0.0.1:{free_port()}"
    log = open(os.path.join(ROOT, ".build", log_name), "w")
    proc = subprocess.Popen([binary, "--listen", addr, *args], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while True:
            try:
                if ready(addr):
                    break
            except Exception:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"atelierd did not start; see {log.name}")
            time.sleep(0.2)
        yield addr
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def serving(addr):
    with AtelierClient(addr, timeout=2) as c:
        return c.health() == "SERVING"


@pytest.fixture(scope="session")
def server(model_dir):
    """Yields the address of a running atelierd serving the repository's models, in
    fp32: test_parity.py compares its answers with TensorFlow's fp32 ones to 1e-5."""
    yield from atelierd(["--model-dir", model_dir, "--precision", "fp32"], "pytest-atelierd.log", serving)


ADMIN_TOKEN = "pytest-admin-token-0123456789"
INFER_TOKEN = "pytest-infer-token-0123456789"


@pytest.fixture(scope="module")
def admin_server(model_dir, tmp_path_factory):
    """Yields the address of an atelierd of its own (tests may unload its models)
    started with --auth-tokens-file holding ADMIN_TOKEN (admin) and INFER_TOKEN."""
    tokens = tmp_path_factory.mktemp("admin") / "tokens"
    tokens.write_text(f"{ADMIN_TOKEN} admin pytest-admin\n{INFER_TOKEN} infer pytest-infer\n")
    tokens.chmod(0o600)
    yield from atelierd(["--model-dir", model_dir, "--auth-tokens-file", str(tokens)], "pytest-atelierd-admin.log", serving)


@pytest.fixture
def client(server):
    with AtelierClient(server, timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
def fashion_test():
    """The Fashion-MNIST test split: (uint8 [N,28,28], uint8 [N])."""
    folder = os.environ.get("ATELIER_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")
    try:
        with gzip.open(os.path.join(folder, "t10k-images-idx3-ubyte.gz")) as f:
            images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
        with gzip.open(os.path.join(folder, "t10k-labels-idx1-ubyte.gz")) as f:
            labels = np.frombuffer(f.read(), np.uint8, offset=8)
    except FileNotFoundError as e:
        missing("Fashion-MNIST", f"apt-get install dataset-fashion-mnist ({e})")
    return images, labels
