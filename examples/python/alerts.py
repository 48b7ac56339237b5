"""Watches a camera's alerts (AlertService/WatchAlerts) while that camera streams an
image with an alert rule on its category, and prints the alert.

    python examples/python/alerts.py --category "Ankle boot" docs/images/sample_boot.png
"""

import argparse
import sys
import threading

from _common import ADDR, run
from atelier import AtelierClient, AtelierError, stream_options


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("image")
    p.add_argument("--addr", default=ADDR)
    p.add_argument("--category", default="Ankle boot")
    p.add_argument("--min-score", type=float, default=0.5)
    p.add_argument("--wait", type=float, default=10.0)
    args = p.parse_args()
    with AtelierClient(args.addr) as c:
        subscribed, seen = threading.Event(), []

        def watch():
            try:
                for alert in c.watch_alerts(camera_ids=["shop-window"], timeout=args.wait,
                                            ready=subscribed.set):
                    seen.append(alert)
                    return
            except AtelierError as e:
                seen.append(e)
            finally:
                subscribed.set()

        watcher = threading.Thread(target=watch)
        watcher.start()
        subscribed.wait()
        opts = stream_options("shop-window", alerts={"watch": [args.category]},
                              alert_score=args.min_score)
        for _ in c.classify_stream([args.image] * 3, options=opts):
            pass
        watcher.join()
    if not seen or isinstance(seen[0], AtelierError):
        print(f"alerts.py: no alert within {args.wait}s ({seen[0] if seen else ''})", file=sys.stderr)
        sys.exit(1)
    a = seen[0]
    print(f"alert {a.rule}: {a.label} {a.score:.3f} on {a.camera_id} frame {a.frame_id}")


run(main)
