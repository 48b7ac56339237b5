"""The package installs with pip from the repository and ships its stubs and types."""

import os
import shutil
import subprocess
import sys
import zipfile

from conftest import ROOT


def test_pip_installs_the_package(tmp_path):
    # Build from a copy: setuptools leaves build/ and *.egg-info/ where it builds.
    pkg = tmp_path / "src-copy"
    shutil.copytree(os.path.join(ROOT, "client", "python"), pkg,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache", "tests"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-q", "-w", str(wheels), str(pkg)], check=True)
    [wheel] = list(wheels.glob("atelier_client-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for want in ["atelier/__init__.py", "atelier/client.py", "atelier/py.typed",
                 "atelier/v1/classify_service_pb2.py", "atelier/v1/classify_service_pb2.pyi",
                 "atelier/v1/classify_service_pb2_grpc.py", "atelier/v1/stream_pb2.py"]:
        assert want in names, f"{want} missing from {wheel.name}"

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                    "--disable-pip-version-check", "-q", "--target", str(site), str(wheel)], check=True)
    out = subprocess.run([sys.executable, "-c", "import atelier; print(atelier.__file__, atelier.AtelierClient.detect)"],
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(site)},
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith(str(site)), f"imported {out} instead of the installed copy"
