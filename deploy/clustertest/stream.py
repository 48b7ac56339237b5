"""Live ClassifyStreams through the Python client, for deploy/clustertest.

    python stream.py TARGET IMAGE STREAMS FPS

Opens STREAMS streams, one after another, so that round robin puts them on the
replicas in turn, each sending IMAGE FPS times a second, and says "ready" on stderr
once each has a result. When its stdin closes, it ends the streams still open
(half-close, then the server's last results) and prints one JSON list, one entry a
stream: results received, the last one's time (seconds since 1970) and, if the
stream failed, when and with which code as the caller saw it ("UNAVAILABLE").
gRPC's Python calls do not say which server they went to: the test reads that from
the servers.
"""

import json
import sys
import threading
import time

from atelier import AtelierClient, AtelierError


def main() -> None:
    target, image, streams, fps = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    with open(image, "rb") as f:
        image = f.read()
    stop = threading.Event()
    with AtelierClient(target, timeout=20, insecure=True) as c:
        c.classify(image, top_k=1)
        time.sleep(1)  # every replica's connection up and its health SERVING

        report = [{"results": 0, "last": 0.0, "ended": 0.0, "code": ""} for _ in range(streams)]
        started = [threading.Event() for _ in range(streams)]

        def frames():
            while not stop.wait(1 / fps):
                yield image

        def run(i: int) -> None:
            r = report[i]
            try:
                for _ in c.classify_stream(frames(), top_k=1):
                    r["results"] += 1
                    r["last"] = time.time()
                    started[i].set()
            except AtelierError as e:
                r["ended"], r["code"] = time.time(), e.code.name
            except Exception as e:  # anything else would end the thread unseen
                r["ended"], r["code"] = time.time(), f"{type(e).__name__}: {e}"
            started[i].set()

        ts = [threading.Thread(target=run, args=(i,)) for i in range(streams)]
        for i, t in enumerate(ts):
            t.start()
            started[i].wait(20)  # open: round robin's next pick is the next replica
        print("ready", file=sys.stderr, flush=True)
        sys.stdin.read()
        stop.set()
        for t in ts:
            t.join(20)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
