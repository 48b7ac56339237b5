"""Scores a detector SavedModel on held-out scenes in Python: mAP@0.5 and recall.

This is the quick check the build runs after training. The evaluation that counts runs
through the server (examples/detect-eval, and the Go tests), with the same rules:

- a detection matches the same-type ground-truth garment it overlaps most, if their
  IoU is at least 0.5 and that garment is not matched yet (else it is a false positive);
  a detection whose best garment is difficult is ignored (PASCAL VOC);
- AP is the area under the all-point interpolated precision/recall curve of a type,
  mAP the mean over the types present; recall counts detections scoring at least
  min_score (0.5, the server's default).

    python -m atelier_train.detector_eval --model detector/1 [--scenes 200]
"""

import argparse
import json

import numpy as np

from . import scenes

IOU = 0.5
DEFAULT_MIN_SCORE = 0.5


def iou(a, b):
    """IoU of two boxes (x_min, y_min, x_max, y_max)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def average_precision(recall, precision):
    """All-point interpolated AP (PASCAL VOC 2010+)."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def score(truths, detections, min_score=DEFAULT_MIN_SCORE, types=len(scenes.COARSE)):
    """truths[i] is scene i's garments (dicts with box, coarse, difficult); detections[i]
    its detections (dicts with box, coarse, score). Returns mAP@0.5, per-type AP and the
    recall of detections scoring at least min_score."""
    aps, found, total = {}, 0, 0
    for t in range(types):
        dets = sorted(((d["score"], i, d["box"]) for i, ds in enumerate(detections)
                       for d in ds if d["coarse"] == t), key=lambda x: -x[0])
        gts = [[o for o in objs if o["coarse"] == t] for objs in truths]
        positives = sum(1 for objs in gts for o in objs if not o["difficult"])
        used = [[False] * len(objs) for objs in gts]
        tp, fp = [], []
        for s, i, box in dets:
            overlaps = [iou(box, o["box"]) for o in gts[i]]
            best = int(np.argmax(overlaps)) if overlaps else -1
            if best < 0 or overlaps[best] < IOU:
                tp.append(0), fp.append(1)
            elif gts[i][best]["difficult"]:
                continue
            elif used[i][best]:
                tp.append(0), fp.append(1)
            else:
                used[i][best] = True
                tp.append(1), fp.append(0)
                found += s >= min_score
        total += positives
        if positives:
            tp, fp = np.cumsum(tp), np.cumsum(fp)
            recall = tp / positives if len(tp) else np.zeros(0)
            precision = tp / np.maximum(tp + fp, 1e-9) if len(tp) else np.zeros(0)
            aps[scenes.COARSE[t]] = average_precision(recall, precision)
    return {"map50": float(np.mean(list(aps.values()))), "ap50": aps,
            "recall": found / max(total, 1), "garments": total}


def evaluate(model_dir, count=200, seed=scenes.HELDOUT_SEED, data=None, min_score=DEFAULT_MIN_SCORE):
    """Runs the SavedModel on `count` held-out scenes (resized as the server does)."""
    from . import detector
    import tensorflow as tf
    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    _, size, _, channels = serve.structured_input_signature[1]["images"].shape
    pool = scenes.Pool("test", data)
    truths, detections = [], []
    for i in range(count):
        rgb, objects = scenes.scene(pool, seed, i)
        h, w = rgb.shape[:2]
        image = scenes.to_grey(rgb)[..., None] if channels == 1 else rgb
        out = serve(images=tf.constant(detector.fit(image, size)[None]))
        boxes, scores = out["detection_boxes"].numpy()[0], out["detection_scores"].numpy()[0]
        classes, n = out["detection_classes"].numpy()[0], int(out["num_detections"].numpy()[0])
        detections.append([{"box": (b[1] * w, b[0] * h, b[3] * w, b[2] * h), "coarse": int(c), "score": float(s)}
                           for b, s, c in zip(boxes[:n], scores[:n], classes[:n])])
        truths.append(objects)
    return score(truths, detections, min_score)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="detector SavedModel folder")
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE)
    parser.add_argument("--data", help="folder with the Fashion-MNIST IDX files")
    args = parser.parse_args()
    print(json.dumps(evaluate(args.model, args.scenes, data=args.data, min_score=args.min_score), indent=1))


if __name__ == "__main__":
    main()
