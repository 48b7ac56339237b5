"""The garment detector: a single-stage, CenterNet-style detector of coarse garment types.

A small convolutional backbone with a top-down feature pyramid ends in two heads on a
stride-4 grid: a heatmap with one channel per class (the chance that a garment of that
class is centred in the cell) and, per cell, the distances from the cell centre to the
box's four edges. Decoding is part of the exported graph: heatmap peaks (3x3 max-pool),
the best PRE_NMS peaks, their boxes, then per-class non-max suppression
(tf.image.combined_non_max_suppression).

Signature `serving_default` (the TF Object Detection API convention):
  images uint8 [batch, S, S, C] ->
    detection_boxes   float32 [batch, K, 4]  (ymin, xmin, ymax, xmax), normalised to [0, 1]
    detection_scores  float32 [batch, K]     best first; padding rows score 0
    detection_classes float32 [batch, K]     0-based index into assets/labels.txt
    num_detections    float32 [batch]        how many rows are real
Classes are the coarse types in scenes.COARSE. Detections scoring under SCORE_FLOOR are
never returned. The server resizes every image to S x S (squashing its aspect ratio),
and the detector is trained on scenes squashed the same way.

    python -m atelier_train.detector train --out DIR [--scenes 5000 --epochs 6]
    python -m atelier_train.detector predict --model DIR --raw FILE --shape N,H,W,C
"""

import argparse
import json
import time

import numpy as np
import tensorflow as tf
import keras
from keras import layers

from . import export, progress, scenes

EMBEDDED = {"size": 160, "channels": 1, "widths": (16, 24, 48, 64, 96), "neck": 48, "head": 24}
FULL = {"size": 512, "channels": 3, "widths": (64, 128, 256, 512, 512), "neck": 256, "head": 128}
STRIDE = 4
MAX_DETECTIONS = 100  # K, the rows of every output
PRE_NMS = 200
NMS_IOU = 0.5
SCORE_FLOOR = 0.05
MAX_OBJECTS = 40  # garments per scene the training targets can hold


def _conv(x, filters, name, stride=1, kernel=3):
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(name=name + "_bn")(x)
    return layers.ReLU(name=name + "_relu")(x)


def build(size=EMBEDDED["size"], channels=EMBEDDED["channels"], widths=EMBEDDED["widths"],
          neck=EMBEDDED["neck"], head=EMBEDDED["head"], classes=len(scenes.COARSE)):
    """Returns the detector network: uint8 images -> (heatmap logits, log box distances),
    both on the stride-4 grid."""
    inputs = keras.Input(shape=(size, size, channels), name="images", dtype="uint8")
    x = layers.Rescaling(1.0 / 255, name="scale")(inputs)
    x = _conv(x, widths[0], "stem", stride=2)
    levels = []
    for i, w in enumerate(widths[1:], start=1):  # strides 4, 8, 16, 32
        x = _conv(x, w, f"down{i}", stride=2)
        x = _conv(x, w, f"block{i}")
        levels.append(x)
    x = _conv(levels[-1], neck, "lateral4", kernel=1)
    for i in (3, 2, 1):  # top-down: stride 32 -> 4
        x = layers.UpSampling2D(name=f"up{i}")(x)
        lateral = _conv(levels[i - 1], neck, f"lateral{i}", kernel=1)
        x = _conv(layers.Add(name=f"merge{i}")([x, lateral]), neck if i > 1 else head, f"smooth{i}")
    heat = _conv(x, head, "heat_conv")
    heat = layers.Conv2D(classes, 1, name="heatmap",
                         bias_initializer=keras.initializers.Constant(-np.log(99.0)))(heat)
    box = _conv(x, head, "box_conv")
    box = layers.Conv2D(4, 1, name="box", bias_initializer=keras.initializers.Constant(np.log(4.0)))(box)
    return keras.Model(inputs, [heat, box], name="garment_detector")


def _distances(box):
    """Log distances -> distances in grid cells (clipped so exp never overflows)."""
    return tf.exp(tf.clip_by_value(box, -6.0, 6.0))


def decode(heat_logits, box, calibration=(1.0, 0.0), floor=SCORE_FLOOR):
    """Turns the network's outputs into the four detection tensors (see the module doc).
    Scores are sigmoid(a * logit + b) for calibration (a, b); see calibrate."""
    a, b = calibration
    scores = tf.sigmoid(a * heat_logits + b)
    peaks = tf.cast(tf.equal(scores, tf.nn.max_pool2d(scores, 3, 1, "SAME")), scores.dtype)
    shape = tf.shape(scores)
    b, g, classes = shape[0], shape[1], shape[3]
    flat = tf.reshape(scores * peaks, [b, -1])
    top, index = tf.math.top_k(flat, k=PRE_NMS)
    cell, cls = index // classes, index % classes
    gf = tf.cast(g, tf.float32)
    cy = (tf.cast(cell // g, tf.float32) + 0.5) / gf
    cx = (tf.cast(cell % g, tf.float32) + 0.5) / gf
    ltrb = tf.gather(tf.reshape(_distances(box), [b, -1, 4]), cell, batch_dims=1) / gf
    boxes = tf.stack([cy - ltrb[..., 1], cx - ltrb[..., 0], cy + ltrb[..., 3], cx + ltrb[..., 2]], axis=-1)
    per_class = tf.one_hot(cls, classes, dtype=tf.float32) * top[..., None]
    nms = tf.image.combined_non_max_suppression(
        boxes[:, :, None, :], per_class, max_output_size_per_class=MAX_DETECTIONS,
        max_total_size=MAX_DETECTIONS, iou_threshold=NMS_IOU, score_threshold=floor,
        clip_boxes=True)
    return {"detection_boxes": nms.nmsed_boxes, "detection_scores": nms.nmsed_scores,
            "detection_classes": nms.nmsed_classes,
            "num_detections": tf.cast(nms.valid_detections, tf.float32)}


def serving_endpoints(model, calibration=(1.0, 0.0)):
    """Returns the detector's signature as {name: (function, input_signature)}."""
    spec = [tf.TensorSpec([None] + list(model.input_shape[1:]), tf.uint8, name="images")]

    def serve(images):
        heat, box = model(images, training=False)
        return decode(heat, box, calibration)

    return {"serving_default": (serve, spec)}


def export_detector(model, out_dir, calibration=(1.0, 0.0)):
    """Exports model to out_dir with its serving signature and the coarse labels."""
    return export.save(model, serving_endpoints(model, calibration), out_dir, labels=scenes.COARSE)


def fit_platt(logits, correct, steps=50):
    """Fits P(correct) = sigmoid(a * logit + b) by Newton's method; returns (a, b) with a
    kept in [0.25, 4]."""
    x, y = np.asarray(logits, np.float64), np.asarray(correct, np.float64)
    a, b = 1.0, 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(a * x + b)))
        w = p * (1 - p) + 1e-9
        grad = np.array([np.sum((p - y) * x), np.sum(p - y)])
        hess = np.array([[np.sum(w * x * x), np.sum(w * x)], [np.sum(w * x), np.sum(w)]]) + 1e-6 * np.eye(2)
        a, b = np.array([a, b]) - np.linalg.solve(hess, grad)
    return float(np.clip(a, 0.25, 4.0)), float(b)


def calibrate(model, size, seed, data=None, count=300):
    """Platt-scales the heatmap scores on validation scenes (training-split items, their
    own seed) so that a score is the chance that a detection is right: a detection is
    right when it overlaps an unmatched garment of its type with IoU >= 0.5. The scores'
    order, hence the mAP, does not change; min_score 0.5 then keeps the detections that
    are more likely right than wrong."""
    images, boxes, classes, valid = make_scenes(count, seed, size, data=data)
    logits, correct = [], []
    for i in range(0, count, 50):
        heat, box = model(images[i:i + 50], training=False)
        out = {k: v.numpy() for k, v in decode(heat, box, floor=0.01).items()}
        for j in range(len(out["num_detections"])):
            truth = [(boxes[i + j, m], classes[i + j, m]) for m in np.flatnonzero(valid[i + j])]
            used = [False] * len(truth)
            for k in range(int(out["num_detections"][j])):
                s, c, d = out["detection_scores"][j, k], out["detection_classes"][j, k], out["detection_boxes"][j, k]
                overlaps = [_iou(d, t) if tc == c and not used[m] else 0 for m, (t, tc) in enumerate(truth)]
                hit = bool(overlaps) and max(overlaps) >= 0.5
                if hit:
                    used[int(np.argmax(overlaps))] = True
                logits.append(np.log(s / (1 - s)))
                correct.append(hit)
    return fit_platt(logits, correct)


def _iou(a, b):
    """IoU of two (ymin, xmin, ymax, xmax) boxes."""
    h = min(a[2], b[2]) - max(a[0], b[0])
    w = min(a[3], b[3]) - max(a[1], b[1])
    if h <= 0 or w <= 0:
        return 0.0
    return h * w / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - h * w)


# Training targets, computed in the input pipeline from padded boxes.

def targets(boxes, classes, valid, grid, num_classes=len(scenes.COARSE)):
    """Returns the heatmap target [B, G, G, classes] and the box target [B, G, G, 4] with
    its weight [B, G, G] for normalised boxes [B, M, 4] (ymin, xmin, ymax, xmax).

    Each garment peaks at 1 in the cell holding its centre, with a Gaussian around it
    (sigma a sixth of its size); the 3x3 cells around the centre that lie inside the box
    learn the distances to its edges, weighted by the Gaussian, the smaller garment
    winning a shared cell.
    """
    g = tf.cast(grid, tf.float32)
    ymin, xmin, ymax, xmax = tf.unstack(boxes * g, axis=-1)  # [B, M] in cells
    cy, cx = tf.floor((ymin + ymax) / 2), tf.floor((xmin + xmax) / 2)
    sy = tf.maximum((ymax - ymin) / 6, 0.4)
    sx = tf.maximum((xmax - xmin) / 6, 0.4)
    idx = tf.range(grid, dtype=tf.float32)
    gy = tf.exp(-tf.square(idx[None, None, :] - cy[..., None]) / (2 * tf.square(sy[..., None])))
    gx = tf.exp(-tf.square(idx[None, None, :] - cx[..., None]) / (2 * tf.square(sx[..., None])))
    gauss = gy[..., :, None] * gx[..., None, :] * tf.cast(valid, tf.float32)[..., None, None]  # [B, M, G, G]
    onehot = tf.one_hot(classes, num_classes)  # [B, M, C]
    heat = tf.reduce_max(gauss[..., None] * onehot[:, :, None, None, :], axis=1)

    zero = tf.zeros_like(gauss)
    centre_y, centre_x = idx[None, None, :, None] + 0.5 + zero, idx[None, None, None, :] + 0.5 + zero
    near = (tf.abs(idx[None, None, :, None] - cy[..., None, None]) <= 1) & \
           (tf.abs(idx[None, None, None, :] - cx[..., None, None]) <= 1)
    ltrb = tf.stack([centre_x - xmin[..., None, None], centre_y - ymin[..., None, None],
                     xmax[..., None, None] - centre_x, ymax[..., None, None] - centre_y], axis=-1)
    inside = tf.reduce_min(ltrb, axis=-1) > 0
    claim = near & inside & tf.cast(valid, tf.bool)[..., None, None]  # [B, M, G, G]
    area = ((ymax - ymin) * (xmax - xmin))[..., None, None]
    cost = tf.where(claim, area, 1e9)
    winner = tf.argmin(cost, axis=1)  # [B, G, G]
    weight = tf.where(tf.reduce_any(claim, axis=1),
                      tf.gather(tf.transpose(gauss, [0, 2, 3, 1]), winner, batch_dims=3), 0.0)
    box = tf.gather(tf.transpose(ltrb, [0, 2, 3, 1, 4]), winner, batch_dims=3)
    return heat, tf.maximum(box, 1e-3), weight


def focal_loss(target, logits):
    """CenterNet's penalty-reduced focal loss, summed and divided by the garment count."""
    p = tf.clip_by_value(tf.sigmoid(logits), 1e-4, 1 - 1e-4)
    pos = tf.cast(target >= 1.0 - 1e-6, tf.float32)
    pos_loss = -tf.math.log(p) * tf.square(1 - p) * pos
    neg_loss = -tf.math.log(1 - p) * tf.square(p) * tf.pow(1 - target, 4) * (1 - pos)
    return tf.reduce_sum(pos_loss + neg_loss) / tf.maximum(tf.reduce_sum(pos), 1.0)


def giou_loss(target, log_pred, weight):
    """Generalised-IoU loss between boxes given as distances from the same cell centre."""
    pred = _distances(log_pred)
    tl, tt, tr, tb = tf.unstack(target, axis=-1)
    pl, pt, pr, pb = tf.unstack(pred, axis=-1)
    inter = (tf.minimum(tl, pl) + tf.minimum(tr, pr)) * (tf.minimum(tt, pt) + tf.minimum(tb, pb))
    union = (tl + tr) * (tt + tb) + (pl + pr) * (pt + pb) - inter
    hull = (tf.maximum(tl, pl) + tf.maximum(tr, pr)) * (tf.maximum(tt, pt) + tf.maximum(tb, pb))
    giou = inter / union - (hull - union) / hull
    return tf.reduce_sum((1 - giou) * weight) / tf.maximum(tf.reduce_sum(weight), 1e-6)


# Data.

def make_scenes(count, seed, size, split="train", data=None, pool=None):
    """Composes count scenes and fits them to the detector's input as the server does:
    grey (PIL weights), then TensorFlow's bilinear resize to size x size. Returns
    (images uint8 [N, size, size, 1], boxes float32 [N, MAX_OBJECTS, 4] normalised
    (ymin, xmin, ymax, xmax), classes int32 [N, MAX_OBJECTS], valid bool [N, MAX_OBJECTS])."""
    pool = pool or scenes.Pool(split, data)
    images = np.zeros((count, size, size, 1), np.uint8)
    boxes = np.zeros((count, MAX_OBJECTS, 4), np.float32)
    classes = np.zeros((count, MAX_OBJECTS), np.int32)
    valid = np.zeros((count, MAX_OBJECTS), bool)
    for i in range(count):
        rgb, objects = scenes.scene(pool, seed, i)
        images[i] = fit(scenes.to_grey(rgb)[..., None], size)
        h, w = rgb.shape[:2]
        kept = [o for o in objects if not o["difficult"]][:MAX_OBJECTS]
        for j, o in enumerate(kept):
            x0, y0, x1, y1 = o["box"]
            boxes[i, j] = (y0 / h, x0 / w, y1 / h, x1 / w)
            classes[i, j] = o["coarse"]
            valid[i, j] = True
    return images, boxes, classes, valid


def fit(image, size):
    """Resizes an HWC uint8 image to size x size exactly as the server's prep does."""
    out = tf.image.resize(image, [size, size], method="bilinear", antialias=False)
    return tf.cast(tf.round(tf.clip_by_value(out, 0, 255)), tf.uint8).numpy()


def make_targets(boxes, classes, valid, grid, chunk=256):
    """Computes the training targets of every scene once, as float16 NumPy arrays."""
    parts = [targets(tf.constant(boxes[i:i + chunk]), tf.constant(classes[i:i + chunk]),
                     tf.constant(valid[i:i + chunk]), grid) for i in range(0, len(boxes), chunk)]
    return tuple(np.concatenate([p[k].numpy().astype(np.float16) for p in parts]) for k in range(3))


def _flip(images, heat, box, weight):
    """Mirrors half of a batch left to right, targets with it (left and right distances swap)."""
    flip = tf.random.uniform([tf.shape(images)[0]]) < 0.5

    def mirror(x, swapped=None):
        m = tf.reverse(x, axis=[2])
        if swapped is not None:
            m = tf.gather(m, swapped, axis=-1)
        return tf.where(tf.reshape(flip, [-1] + [1] * (len(x.shape) - 1)), m, x)

    return (mirror(images), tf.cast(mirror(heat), tf.float32), tf.cast(mirror(box, [2, 1, 0, 3]), tf.float32),
            tf.cast(mirror(weight), tf.float32))


def train_embedded(out_dir, scene_count=5000, epochs=6, batch_size=32, seed=0, data=None,
                   settings=None, heldout=100):
    """Trains the embedded detector on composed scenes, exports it, and returns a report
    with its mAP@0.5 and recall on held-out scenes (measured in Python on the export)."""
    cfg = dict(EMBEDDED, **(settings or {}))
    keras.utils.set_random_seed(seed)
    start = time.time()
    images, boxes, classes, valid = make_scenes(scene_count, seed + 1, cfg["size"], data=data)
    print(f"[detector] composed {scene_count:,} training scenes ({int(valid.sum()):,} garments) "
          f"in {time.time() - start:.0f}s", flush=True)
    model = build(cfg["size"], cfg["channels"], cfg["widths"], cfg["neck"], cfg["head"])
    heat, box, weight = make_targets(boxes, classes, valid, cfg["size"] // STRIDE)
    ds = (tf.data.Dataset.from_tensor_slices((images, heat, box, weight))
          .shuffle(scene_count, seed=seed).batch(batch_size, drop_remainder=True)
          .map(_flip).prefetch(2))
    steps = epochs * (scene_count // batch_size)
    warmup = max(steps // 30, 1)
    schedule = keras.optimizers.schedules.CosineDecay(0.0, steps - warmup, warmup_target=3e-3,
                                                      warmup_steps=warmup, alpha=0.02)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=1e-4)

    @tf.function
    def step(x, heat, box, weight):
        with tf.GradientTape() as tape:
            heat_logits, box_pred = model(x, training=True)
            l_heat = focal_loss(heat, heat_logits)
            l_box = giou_loss(box, box_pred, weight)
            loss = l_heat + 2.0 * l_box
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return l_heat, l_box

    print(f"[detector] training {model.count_params():,} parameters for {epochs} epochs "
          f"of {scene_count:,} scenes at {cfg['size']}x{cfg['size']}", flush=True)
    train_start = time.time()
    for epoch in range(epochs):
        totals, n = np.zeros(2), 0
        for x, heat, box, weight in ds:
            totals += [float(v) for v in step(x, heat, box, weight)]
            n += 1
        spent = time.time() - train_start
        print(f"[detector] epoch {epoch + 1}/{epochs} heatmap_loss={totals[0] / n:.4f} "
              f"giou_loss={totals[1] / n:.4f} elapsed {spent:.0f}s "
              f"eta {spent / (epoch + 1) * (epochs - epoch - 1):.0f}s", flush=True)
    train_seconds = time.time() - train_start
    calibration = calibrate(model, cfg["size"], seed + 2, data, count=max(min(scene_count // 10, 300), 20))
    print(f"[detector] score calibration: sigmoid({calibration[0]:.3f} * logit + {calibration[1]:.3f})", flush=True)
    export_detector(model, out_dir, calibration)
    report = {"train_seconds": round(train_seconds, 1), "parameters": int(model.count_params()),
              "calibration": [round(v, 4) for v in calibration]}
    if heldout:
        from . import detector_eval
        report.update(detector_eval.evaluate(out_dir, heldout, data=data))
        print(f"[detector] held-out (Python, {heldout} scenes): mAP@0.5 {report['map50']:.4f} "
              f"recall {report['recall']:.4f}", flush=True)
    return report


def export_full(out_dir):
    """Exports the untrained full-width detector (512x512x3, the benchmark model)."""
    keras.utils.set_random_seed(0)
    return export_detector(build(FULL["size"], FULL["channels"], FULL["widths"], FULL["neck"], FULL["head"]),
                           out_dir)


def predict(model_dir, images):
    """Runs a SavedModel's serving signature in Python; returns its outputs as NumPy."""
    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    return {k: v.numpy() for k, v in serve(images=tf.constant(images)).items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train and export the embedded detector")
    train.add_argument("--out", required=True)
    train.add_argument("--scenes", type=int, default=5000)
    train.add_argument("--epochs", type=int, default=6)
    train.add_argument("--data", help="folder with the Fashion-MNIST IDX files")
    run = sub.add_parser("predict", help="print a SavedModel's outputs for raw uint8 input as JSON")
    run.add_argument("--model", required=True)
    run.add_argument("--raw", required=True, help="file of N*H*W*C bytes")
    run.add_argument("--shape", required=True, help="N,H,W,C")
    args = parser.parse_args()
    if args.command == "train":
        print(json.dumps(train_embedded(args.out, args.scenes, args.epochs, data=args.data)))
        return
    shape = [int(v) for v in args.shape.split(",")]
    images = np.fromfile(args.raw, np.uint8).reshape(shape)
    print(json.dumps({k: v.tolist() for k, v in predict(args.model, images).items()}))


if __name__ == "__main__":
    main()
