"""Closed-loop Classify load through the Python client, for deploy/clustertest.

    python load.py TARGET IMAGE SECONDS THREADS [get_model]

Prints one JSON object: calls answered, and the failures (code and message) as the
caller saw them, after the client's own retries. With "get_model", the calls are
GetModel("classifier") instead, and it stops early when its stdin closes: gRPC's
Python calls do not say which server answered, and the servers count calls by
method, so a method of its own tells this client's calls from the others' there.
"""

import json
import sys
import threading
import time

from atelier import AtelierClient, AtelierError


def main() -> None:
    target, image, seconds, threads = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    get_model = sys.argv[5:] == ["get_model"]
    with open(image, "rb") as f:
        image = f.read()
    ok, failures, lock = [0], [], threading.Lock()
    stop = threading.Event()
    if get_model:
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    # The replicas serve plaintext behind a DNS name, which is not loopback.
    with AtelierClient(target, timeout=20, insecure=True) as c:
        def once() -> None:
            if get_model:
                c.get_model("classifier")
            else:
                c.classify(image, top_k=1)

        once()  # connected before the clock starts
        print("ready", file=sys.stderr, flush=True)
        end = time.monotonic() + seconds

        def work() -> None:
            while time.monotonic() < end and not stop.is_set():
                try:
                    once()
                    with lock:
                        ok[0] += 1
                except AtelierError as e:
                    with lock:
                        failures.append(f"{e.code.name}: {e.details}")
                except Exception as e:  # anything else would end the thread unseen
                    with lock:
                        failures.append(f"{type(e).__name__}: {e}")

        ts = [threading.Thread(target=work) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    print(json.dumps({"calls": ok[0] + len(failures), "ok": ok[0], "failures": failures}))


if __name__ == "__main__":
    main()
