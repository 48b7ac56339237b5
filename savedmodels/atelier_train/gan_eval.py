"""Measures the generator against the Fashion-MNIST test split, with the classifier.

For every category it draws --per-class designs and reports:
- conditional accuracy: the share the classifier assigns to the requested category;
- the Frechet distance between generated and real test images, computed on the
  classifier's `features` signature (its penultimate layer; no Inception weights can
  be fetched here), beside the same distance between two halves of the real test set
  (the real-vs-real baseline: what sampling noise alone gives at the same size);
- diversity within each category: the mean pairwise distance between its designs, in
  pixels (RMS difference, 0..1) and in classifier features, beside the same figure for
  real test images of that category. A collapsed category scores far below its real
  figure; the ratio generated/real is printed per category.

The real test split is halved by parity of the index within each category, so every
set holds per-class images of each category.

    python -m atelier_train.gan_eval [--generator generator/1] [--classifier classifier/1]
                                     [--per-class 500] [--json report.json]
"""

import argparse
import json
import os
import time

import numpy as np
import tensorflow as tf

from . import fashion_mnist

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = 500

# MIN_DIVERSITY_RATIO is the floor for every category's pixel diversity over the real
# test images' own figure. Two halves of the real test set agree within 2%; a
# generator that draws one design per category scores 0. The built generator scores
# 0.82-0.94, so 0.6 flags a collapse without flaking on a retrained model.
MIN_DIVERSITY_RATIO = 0.6


def load(path):
    """Returns the SavedModel's signatures."""
    return tf.saved_model.load(path).signatures


def latent_size(generator):
    """Returns Z, read from the `z` input of the generator's serving signature."""
    return int(generator.structured_input_signature[1]["z"].shape[-1])


def generate(generator, labels, seed=0):
    """Draws one design per label from standard-normal latents; returns uint8 [N, 28, 28, 1]."""
    z = np.random.default_rng(seed).standard_normal((len(labels), latent_size(generator)))
    out = [generator(z=tf.constant(z[i:i + BATCH], tf.float32),
                     labels=tf.constant(labels[i:i + BATCH], tf.int32))["images"].numpy()
           for i in range(0, len(labels), BATCH)]
    return np.concatenate(out)


def run_classifier(signature, key, images):
    """Runs a classifier signature over images in batches; returns its `key` output."""
    return np.concatenate([signature(images=tf.constant(images[i:i + BATCH]))[key].numpy()
                           for i in range(0, len(images), BATCH)])


def frechet(a, b):
    """Returns the Frechet distance between Gaussians fitted to feature sets a and b:
    |mu_a - mu_b|^2 + tr(C_a) + tr(C_b) - 2 tr((C_a C_b)^(1/2))."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    c_a, c_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(c_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    # tr((C_a C_b)^(1/2)) = tr((A^(1/2) C_b A^(1/2))^(1/2)), a symmetric PSD matrix.
    middle = np.linalg.eigvalsh(root_a @ c_b @ root_a)
    cross = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(c_a) + np.trace(c_b) - 2 * cross)


def diversity(x):
    """Returns the mean Euclidean distance over all pairs of rows of x (float [N, D])."""
    x = np.asarray(x, np.float64)
    sq = (x * x).sum(axis=1)
    d2 = np.clip(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0, None)
    n = len(x)
    return float(np.sqrt(d2)[np.triu_indices(n, 1)].mean())


def pixel_diversity(images):
    """Returns the mean pairwise RMS pixel difference of uint8 images, in 0..1."""
    flat = images.reshape(len(images), -1).astype(np.float64) / 255.0
    return diversity(flat) / np.sqrt(flat.shape[1])


def real_halves(per_class, data=None):
    """Returns two stratified halves of the test split: (images, labels) each, with
    per_class images of every category."""
    images, labels = fashion_mnist.load("test", data)
    halves = ([], [])
    for c in range(len(fashion_mnist.LABELS)):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2 * per_class:
            raise ValueError(f"per_class {per_class} is over half the {len(idx)} test images of class {c}")
        halves[0].append(idx[0:2 * per_class:2])
        halves[1].append(idx[1:2 * per_class:2])
    return [(images[np.concatenate(h)][..., None], labels[np.concatenate(h)]) for h in halves]


def evaluate(generator_dir, classifier_dir, per_class=500, seed=0, data=None):
    """Returns the evaluation report as a dict (see the module doc)."""
    start = time.time()
    gen = load(generator_dir)["serving_default"]
    clf = load(classifier_dir)
    names = fashion_mnist.LABELS
    wanted = np.repeat(np.arange(len(names), dtype=np.int32), per_class)
    fake = generate(gen, wanted, seed)
    gen_seconds = time.time() - start
    (real_a, labels_a), (real_b, labels_b) = real_halves(per_class, data)
    probs = run_classifier(clf["serving_default"], "probabilities", fake)
    feats = {k: run_classifier(clf["features"], "features", v)
             for k, v in (("fake", fake), ("real_a", real_a), ("real_b", real_b))}
    hit = probs.argmax(axis=1) == wanted
    per_category = {}
    for c, name in enumerate(names):
        f, a, b = wanted == c, labels_a == c, labels_b == c
        per_category[name] = {
            "conditional_accuracy": round(float(hit[f].mean()), 4),
            "pixel_diversity": round(pixel_diversity(fake[f]), 4),
            "pixel_diversity_real": round(pixel_diversity(real_a[a]), 4),
            "pixel_diversity_real_b": round(pixel_diversity(real_b[b]), 4),
            "feature_diversity": round(diversity(feats["fake"][f]), 3),
            "feature_diversity_real": round(diversity(feats["real_a"][a]), 3),
        }
    ratios = [v["pixel_diversity"] / v["pixel_diversity_real"] for v in per_category.values()]
    f_ratios = [v["feature_diversity"] / v["feature_diversity_real"] for v in per_category.values()]
    real_ratios = [v["pixel_diversity_real_b"] / v["pixel_diversity_real"] for v in per_category.values()]
    return {
        "images_per_category": per_class,
        "conditional_accuracy": round(float(hit.mean()), 4),
        "frechet_generated_vs_real": round(frechet(feats["fake"], feats["real_a"]), 3),
        "frechet_real_vs_real": round(frechet(feats["real_b"], feats["real_a"]), 3),
        "pixel_diversity_ratio_min": round(min(ratios), 3),
        "pixel_diversity_ratio_mean": round(float(np.mean(ratios)), 3),
        "pixel_diversity_ratio_real_vs_real_min": round(min(real_ratios), 3),
        "feature_diversity_ratio_min": round(min(f_ratios), 3),
        "feature_diversity_ratio_mean": round(float(np.mean(f_ratios)), 3),
        "generation_ms_per_image": round(1000 * gen_seconds / len(wanted), 3),
        "per_category": per_category,
    }


def format_report(r):
    """Returns the report as a readable table."""
    lines = [f"{'category':<12} {'cond.acc':>8} {'pix.div':>8} {'real':>6} {'ratio':>6} "
             f"{'feat.div':>8} {'real':>7} {'ratio':>6}"]
    for name, v in r["per_category"].items():
        lines.append(
            f"{name:<12} {v['conditional_accuracy']:>8.3f} {v['pixel_diversity']:>8.4f} "
            f"{v['pixel_diversity_real']:>6.4f} {v['pixel_diversity'] / v['pixel_diversity_real']:>6.3f} "
            f"{v['feature_diversity']:>8.2f} {v['feature_diversity_real']:>7.2f} "
            f"{v['feature_diversity'] / v['feature_diversity_real']:>6.3f}")
    lines += [
        f"conditional accuracy      {r['conditional_accuracy']:.4f} "
        f"({r['images_per_category']} designs per category)",
        f"Frechet distance (classifier features): generated vs real {r['frechet_generated_vs_real']:.3f}, "
        f"real vs real {r['frechet_real_vs_real']:.3f}",
        f"pixel diversity generated/real: min {r['pixel_diversity_ratio_min']:.3f} "
        f"mean {r['pixel_diversity_ratio_mean']:.3f} (real half/real half min "
        f"{r['pixel_diversity_ratio_real_vs_real_min']:.3f})",
        f"feature diversity generated/real: min {r['feature_diversity_ratio_min']:.3f} "
        f"mean {r['feature_diversity_ratio_mean']:.3f}",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", default=os.path.join(HERE, "generator", "1"))
    parser.add_argument("--classifier", default=os.path.join(HERE, "classifier", "1"))
    parser.add_argument("--per-class", type=int, default=500, help="designs per category (max 500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", help="folder with the Fashion-MNIST IDX files")
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args()
    report = evaluate(args.generator, args.classifier, args.per_class, args.seed, args.data)
    print(format_report(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
