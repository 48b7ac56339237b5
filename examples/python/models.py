"""Lists the loaded models (ModelService/ListModels) with each one's versions and
labels (ModelService/GetModel).

    python examples/python/models.py
"""

import argparse

from _common import ADDR, run
from atelier import AtelierClient
from atelier.v1 import model_service_pb2 as model_pb


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--addr", default=ADDR)
    args = p.parse_args()
    with AtelierClient(args.addr) as c:
        for m in c.list_models():
            info = c.get_model(m.name)
            role = model_pb.ModelRole.Name(info.role).removeprefix("MODEL_ROLE_").lower()
            for v in info.versions:
                print(f"{info.name} {v.version} {role} {len(v.labels)} labels: {', '.join(v.labels)}")


run(main)
