"""Builds the embedded models into savedmodels/<name>/<version>/, only when needed.

The embedded models (classifier, detector, generator) are trained once and committed,
each with its build-report.json and .build-hash: the hash of its inputs (the Python
files that define and train it, its settings and the data files). A version folder
whose .build-hash matches is left alone; a model built before with the same hash is
copied from the build cache ($ATELIER_CACHE, default ~/.cache/atelier); anything else
is trained afresh and cached. The untrained -full models are built on demand.

    python -m atelier_train.build [--only classifier] [--force]
    python -m atelier_train.build --check     # CI: shipped models match their inputs
    python -m atelier_train.build --retrain   # rebuild all embedded models, check gates
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
import time

from . import fashion_mnist

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_MODELS = os.path.dirname(HERE)


def _classifier(out_dir, settings):
    from . import classifier
    accuracy = classifier.train_embedded(out_dir, settings["epochs"])
    return {"test_accuracy": round(float(accuracy), 4)}


def _classifier_full(out_dir, settings):
    from . import classifier
    classifier.export_full(out_dir, classes=settings["classes"])
    return {}


def _generator(out_dir, settings):
    from . import gan
    return gan.train(out_dir, gan.Settings(**settings))


def _detector(out_dir, settings):
    from . import detector
    return detector.train_embedded(out_dir, settings["scenes"], settings["epochs"])


def _detector_full(out_dir, settings):
    from . import detector
    detector.export_full(out_dir)
    return {}


# name -> (version, source files, settings, builder, built by `make models`).
MODELS = {
    "classifier": (1, ["classifier.py", "vgg.py", "export.py", "fashion_mnist.py"],
                   {"epochs": 36}, _classifier, True),
    "classifier-full": (1, ["classifier.py", "vgg.py", "export.py"],
                        {"classes": 15}, _classifier_full, False),
    "generator": (1, ["gan.py", "export.py", "fashion_mnist.py"],
                  {"epochs": 12, "d_width": 64, "stages": 12}, _generator, True),
    "detector": (1, ["detector.py", "detector_eval.py", "scenes.py", "export.py", "fashion_mnist.py"],
                 {"scenes": 5000, "epochs": 6}, _detector, True),
    "detector-full": (1, ["detector.py", "scenes.py", "export.py"], {}, _detector_full, False),
}


# Quality gates `--retrain` checks in each new build report: key -> minimum. The
# integration tests check more (through gRPC); these stop a bad model being committed.
GATES = {
    "classifier": {"test_accuracy": 0.94},
    "generator": {"fake_class_acc": 0.95},
    "detector": {"map50": 0.90},
}


def input_hash(name):
    """Returns the hash of everything that determines model `name`."""
    _, sources, settings, _, _ = MODELS[name]
    h = hashlib.sha256()
    h.update(json.dumps({"name": name, "settings": settings}, sort_keys=True).encode())
    for src in sources:
        with open(os.path.join(HERE, src), "rb") as f:
            h.update(src.encode() + f.read())
    if "fashion_mnist.py" in sources:
        folder = fashion_mnist.data_dir()
        for split in ("train", "test"):
            for stem in fashion_mnist.FILES[split]:
                with open(fashion_mnist._find(folder, stem), "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()[:16]


def cache_dir():
    return os.environ.get("ATELIER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "atelier")


def build(name, force=False):
    """Makes savedmodels/<name>/<version>/ current; returns its folder."""
    version, _, settings, builder, _ = MODELS[name]
    digest = input_hash(name)
    out = os.path.join(REPO_MODELS, name, str(version))
    stamp = os.path.join(out, ".build-hash")
    if not force and os.path.exists(stamp) and open(stamp).read().strip() == digest:
        print(f"[build] {name}:{version} is current ({digest})", flush=True)
        return out
    cached = os.path.join(cache_dir(), "models", f"{name}-{version}-{digest}")
    if force or not os.path.exists(os.path.join(cached, "saved_model.pb")):
        print(f"[build] {name}:{version} building ({digest}); this trains a model and "
              f"takes minutes", flush=True)
        start = time.time()
        report = builder(cached, settings)
        report["build_seconds"] = round(time.time() - start, 1)
        report["input_hash"] = digest
        with open(os.path.join(cached, "build-report.json"), "w") as f:
            json.dump(report, f, indent=2)
        print(f"[build] {name}:{version} built in {report['build_seconds']}s: {report}", flush=True)
    else:
        print(f"[build] {name}:{version} restored from the build cache {cached}", flush=True)
    if os.path.exists(out):
        shutil.rmtree(out)
    shutil.copytree(cached, out)
    with open(stamp, "w") as f:
        f.write(digest + "\n")
    return out


def check(names):
    """Returns the problems with the shipped models: each must exist and carry the
    hash of the current training code, settings and data."""
    problems = []
    for name in names:
        version = MODELS[name][0]
        out = os.path.join(REPO_MODELS, name, str(version))
        stamp = os.path.join(out, ".build-hash")
        digest = input_hash(name)
        if not os.path.exists(os.path.join(out, "saved_model.pb")) or not os.path.exists(stamp):
            problems.append(f"{name}:{version} is not in savedmodels/{name}/{version}/; "
                            f"run `make retrain` (or `make models`) and commit savedmodels/{name}")
            continue
        shipped = open(stamp).read().strip()
        if shipped != digest:
            problems.append(f"{name}:{version} was trained from other inputs (shipped {shipped}, "
                            f"current code, settings and data {digest}): its training code changed "
                            f"without a retrained model; run `make models` (or `make retrain`) "
                            f"and commit savedmodels/{name}")
        else:
            print(f"[check] {name}:{version} matches its inputs ({digest})", flush=True)
    return problems


def gate(name, report):
    """Returns the gates report misses."""
    return [f"{name}: {key} {report.get(key)} is below {least}"
            for key, least in GATES.get(name, {}).items()
            if not isinstance(report.get(key), (int, float)) or report[key] < least]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=sorted(MODELS),
                        help="build just this model (repeatable); default: the embedded models")
    parser.add_argument("--force", action="store_true", help="rebuild even when current")
    parser.add_argument("--check", action="store_true",
                        help="train nothing: fail unless every shipped model matches its inputs")
    parser.add_argument("--retrain", action="store_true",
                        help="rebuild the embedded models from scratch and check them against their gates")
    args = parser.parse_args()
    names = args.only or [n for n, spec in MODELS.items() if spec[4]]
    try:
        if args.check:
            problems = check(names)
            if problems:
                sys.exit("[check] " + "\n[check] ".join(problems))
            return
        failed = []
        for name in names:
            out = build(name, args.force or args.retrain)
            if args.retrain:
                with open(os.path.join(out, "build-report.json")) as f:
                    failed += gate(name, json.load(f))
        if failed:
            sys.exit("[retrain] gates missed:\n  " + "\n  ".join(failed))
    except fashion_mnist.DatasetMissing as e:
        sys.exit(f"[build] {e}")


if __name__ == "__main__":
    main()
