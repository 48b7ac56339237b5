"""The Python client against a live server with TLS, mTLS and bearer tokens.

Certificates are made here with the openssl command; the server is bin/atelierd."""

import os
import subprocess
import time

import grpc
import numpy as np
import pytest

from atelier import AtelierClient, AtelierError

from conftest import ROOT, free_port, missing

INFER = "py-infer-0123456789abcdef"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-subj", "/CN=py-ca", "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    for who, usage in (("server", "serverAuth"), ("client", "clientAuth")):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={who}",
                "-keyout", f"{who}.key", "-out", f"{who}.csr", cwd=d)
        (d / f"{who}.ext").write_text(f"subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage={usage}\n")
        openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "1", "-extfile", f"{who}.ext", "-out", f"{who}.pem", cwd=d)
    (d / "tokens").write_text(f"{INFER} infer python\n")
    return d


@pytest.fixture(scope="module")
def secure_server(model_dir, certs):
    binary = os.path.join(ROOT, "bin", "atelierd")
    if not os.path.exists(binary):
        missing("bin/atelierd", "run `make build`")
    addr = f"127.0.0.1:{free_port()}"
    log = open(certs / "atelierd.log", "w")
    proc = subprocess.Popen([binary, "--listen", addr, "--model-dir", model_dir,
                             "--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"),
                             "--tls-client-ca", str(certs / "ca.pem"), "--auth-tokens-file", str(certs / "tokens")],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        with secure(addr, certs, token=None) as c:
            deadline = time.time() + 60
            while True:
                try:
                    if c.health() == "SERVING":
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


def secure(addr, certs, token, client_cert=True, **kw):
    return AtelierClient(addr, timeout=30,
                         root_certificates=(certs / "ca.pem").read_bytes(),
                         certificate_chain=(certs / "client.pem").read_bytes() if client_cert else None,
                         private_key=(certs / "client.key").read_bytes() if client_cert else None,
                         token=token, **kw)


def test_mtls_and_token(secure_server, certs):
    with secure(secure_server, certs, INFER, priority="high") as c:
        assert "classifier" in [m.name for m in c.list_models()]
        assert len(c.classify(np.zeros((28, 28), np.uint8), top_k=2)[0]) == 2


def test_token_from_environment(secure_server, certs, monkeypatch):
    monkeypatch.setenv("ATELIER_TOKEN", INFER)
    with secure(secure_server, certs, None) as c:
        assert c.list_models()


@pytest.mark.parametrize("token,client_cert,code", [
    (None, True, grpc.StatusCode.UNAUTHENTICATED),
    ("py-wrong-0123456789abcdef", True, grpc.StatusCode.UNAUTHENTICATED),
    (INFER, False, grpc.StatusCode.UNAVAILABLE),
])
def test_refused(secure_server, certs, monkeypatch, token, client_cert, code):
    monkeypatch.delenv("ATELIER_TOKEN", raising=False)
    with secure(secure_server, certs, token, client_cert=client_cert) as c:
        with pytest.raises(AtelierError) as e:
            c.list_models()
        assert e.value.code == code


def test_plaintext_against_tls_fails(secure_server, certs):
    """A plaintext client's call to a TLS server fails UNAVAILABLE with a hint to
    connect with TLS, besides gRPC's own words; on a connection that is TLS (here
    refused for want of a client certificate) the hint is not given."""
    with AtelierClient(secure_server, timeout=5, token=INFER) as c:
        with pytest.raises(AtelierError) as e:
            c.list_models()
        assert e.value.code == grpc.StatusCode.UNAVAILABLE
        hint = "is the server serving TLS? then connect with tls=True or root_certificates=..."
        assert hint in str(e.value) and hint in e.value.hint and hint not in e.value.details
    with AtelierClient(secure_server, timeout=5, token=INFER,
                       root_certificates=(certs / "ca.pem").read_bytes()) as c:
        with pytest.raises(AtelierError) as e:
            c.list_models()
        assert e.value.code == grpc.StatusCode.UNAVAILABLE and "serving TLS" not in str(e.value) and not e.value.hint
