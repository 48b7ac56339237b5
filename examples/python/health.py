"""Checks the server (grpc.health.v1.Health/Check); exits 1 unless it is SERVING.

    python examples/python/health.py
"""

import argparse
import sys

from _common import ADDR, run
from atelier import AtelierClient


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--addr", default=ADDR)
    p.add_argument("--service", default="")
    args = p.parse_args()
    with AtelierClient(args.addr) as c:
        status = c.health(args.service)
    print(status)
    if status != "SERVING":
        sys.exit(1)


run(main)
