"""Scenes with known boxes, composed from Fashion-MNIST items, for the detector.

A scene is an RGB picture (224..400 x 192..336 pixels) holding one to three outfit
figures (a top above a bottom above shoes, or a dress above shoes; sometimes a coat
over the top or a bag beside) and a few stray items, on a dark background with
gradients, blotches, stripes, checks or noise and some clutter (shapes that are not
garments). Items are scaled from 28 to 40..96 pixels and pasted as opaque silhouettes
(the item's black surround is where the background shows through), tinted with a
colour that keeps their grey level; figures may overlap each other and run off the
edge of the picture.

Each garment's box is the tight box of its visible pixels, in pixel coordinates
(x_min, y_min, x_max, y_max with the max edges exclusive). A garment less than half
visible (hidden by another or cut by the edge) is marked difficult: evaluation neither
rewards nor punishes finding it, as in PASCAL VOC.

Scene i of a seed is the same on every machine. Training scenes draw items from the
training split only; held-out scenes from the test split only:

    python -m atelier_train.scenes --heldout 200 --out DIR [--seed 7] [--size 640x480]

writes DIR/scene_0000.png ... and DIR/ground_truth.json.
"""

import argparse
import json
import os

import numpy as np
from PIL import Image

from . import fashion_mnist

# The detector's classes: coarse garment types, in class-index order.
COARSE = ["top", "bottom", "full-body", "footwear", "bag"]
# Fashion-MNIST label -> coarse class.
COARSE_OF = [0, 1, 0, 2, 0, 3, 0, 3, 4, 3]
TOPS = (0, 2, 6, 4)  # T-shirt/top, Pullover, Shirt, Coat
TROUSER, DRESS, COAT, BAG = 1, 3, 4, 8
SHOES = (5, 7, 9)  # Sandal, Sneaker, Ankle boot

HELDOUT_SEED = 7
MIN_VISIBLE = 0.5  # below this visible fraction a garment is difficult
MASK_LEVEL = 30  # an item pixel above this belongs to the garment
LUMA = np.array([0.299, 0.587, 0.114])


class Pool:
    """Fashion-MNIST items of one split, indexed by label."""

    def __init__(self, split, data=None, arrays=None):
        self.split = split
        self.images, self.labels = arrays if arrays is not None else fashion_mnist.load(split, data)
        self.by_label = [np.flatnonzero(self.labels == c) for c in range(len(fashion_mnist.LABELS))]

    def pick(self, rng, label):
        """Returns a random item (28x28 uint8) of the given label."""
        return self.images[rng.choice(self.by_label[label])]


def to_grey(rgb):
    """RGB uint8 -> grey uint8 with PIL's convert("L") integer weights, as the server does."""
    rgb = rgb.astype(np.uint32)
    return ((rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16).astype(np.uint8)


def _background(rng, h, w):
    """A dark background: a base colour, a gradient and one texture."""
    ys, xs = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xs / w + np.sin(angle) * ys / h)[..., None]
    bg = rng.uniform(0, 55, 3).astype(np.float32) + ramp * rng.uniform(-30, 30, 3).astype(np.float32)
    kind = rng.integers(5)
    if kind == 1:  # blotches: coarse noise, smoothly upsampled
        cells = rng.uniform(0, 25, (h // 40 + 2, w // 40 + 2, 3)).astype(np.uint8)
        bg = bg + np.asarray(Image.fromarray(cells).resize((w, h), Image.BILINEAR), np.float32)
    elif kind == 2:  # stripes
        period, phase = rng.uniform(6, 30), rng.uniform(0, 2 * np.pi)
        axis = xs if rng.random() < 0.5 else ys
        bg = bg + (np.sin(axis * 2 * np.pi / period + phase)[..., None] * np.float32(rng.uniform(4, 14)))
    elif kind == 3:  # checks
        step = int(rng.integers(8, 40))
        checks = (np.arange(h)[:, None] // step + np.arange(w)[None, :] // step) % 2
        bg = bg + checks[..., None].astype(np.float32) * np.float32(rng.uniform(4, 14))
    if rng.random() < 0.6:
        bg = bg + rng.standard_normal((h, w, 1), dtype=np.float32) * np.float32(rng.uniform(1, 5))
    return np.broadcast_to(bg, (h, w, 3)).copy()


def _clutter(rng, canvas):
    """Draws shapes that are not garments: bars, boxes, discs, lines."""
    h, w, _ = canvas.shape
    for _ in range(rng.integers(0, 6)):
        colour = rng.uniform(30, 140) * rng.uniform(0.7, 1.0, 3)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        kind = rng.integers(4)
        if kind == 3:  # a thin line
            length, angle = rng.uniform(20, 150), rng.uniform(0, np.pi)
            t = np.linspace(0, 1, int(length))
            xs = np.clip((cx + np.cos(angle) * length * t).astype(int), 0, w - 1)
            ys = np.clip((cy + np.sin(angle) * length * t).astype(int), 0, h - 1)
            canvas[ys, xs] = colour
            continue
        rx, ry = rng.uniform(3, 30), rng.uniform(3, 30)
        if kind == 0:  # a thin bar
            rx, ry = (rx, 2) if rng.random() < 0.5 else (2, ry)
        y0, y1 = int(max(cy - ry, 0)), int(min(cy + ry, h))
        x0, x1 = int(max(cx - rx, 0)), int(min(cx + rx, w))
        if y1 <= y0 or x1 <= x0:
            continue
        if kind == 2:  # a disc
            yy, xx = np.mgrid[y0:y1, x0:x1]
            inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
            canvas[y0:y1, x0:x1][inside] = colour
        else:
            canvas[y0:y1, x0:x1] = colour


class _Canvas:
    """Pastes items onto a background and remembers which item owns each pixel."""

    def __init__(self, bg):
        self.rgb = bg
        self.h, self.w, _ = bg.shape
        self.owner = np.full((self.h, self.w), -1, np.int16)
        self.items = []  # (label, full mask pixel count, region on the canvas)

    def paste(self, item, label, x, y, size, rng, mirror=False):
        """Pastes a 28x28 item scaled to size x size with its top-left corner at (x, y)."""
        im = Image.fromarray(item)
        if mirror:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        pix = np.asarray(im.resize((size, size), Image.BILINEAR), np.float32)
        alpha = np.clip(pix / 8, 0, 1)  # opaque wherever the item is not black
        mask = pix > MASK_LEVEL
        x, y = int(round(x)), int(round(y))
        sy0, sx0 = max(0, -y), max(0, -x)
        sy1, sx1 = min(size, self.h - y), min(size, self.w - x)
        index = len(self.items)
        if sy1 <= sy0 or sx1 <= sx0:
            self.items.append((label, int(mask.sum()), None))
            return
        tint = rng.uniform(0.8, 1.2, 3)
        tint /= tint @ LUMA  # coloured, with the grey level (what the models see) kept
        region = (slice(y + sy0, y + sy1), slice(x + sx0, x + sx1))
        self.items.append((label, int(mask.sum()), region))
        a = alpha[sy0:sy1, sx0:sx1, None]
        colour = pix[sy0:sy1, sx0:sx1, None] * tint
        self.rgb[region] = a * colour + (1 - a) * self.rgb[region]
        self.owner[region][mask[sy0:sy1, sx0:sx1]] = index

    def covered(self, x, y, size):
        """Returns the share of the square (x, y, size) that garments already cover."""
        x, y = int(round(x)), int(round(y))
        region = self.owner[max(y, 0):max(y + size, 0), max(x, 0):max(x + size, 0)]
        return float((region >= 0).mean()) if region.size else 0.0

    def objects(self):
        """Returns each pasted garment with its visible box, as the ground truth."""
        out = []
        for index, (label, full, region) in enumerate(self.items):
            if region is None:
                continue
            ys, xs = np.nonzero(self.owner[region] == index)
            if len(ys) == 0:
                continue
            y0, x0 = region[0].start, region[1].start
            box = [x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1]
            visible = len(ys) / max(full, 1)
            small = min(box[2] - box[0], box[3] - box[1]) < 8
            out.append({"box": box, "type": COARSE[COARSE_OF[label]], "coarse": COARSE_OF[label],
                        "label": fashion_mnist.LABELS[label], "class_index": int(label),
                        "difficult": bool(visible < MIN_VISIBLE or small)})
        return out


def _figure(rng, pool, canvas, cx, top, unit):
    """Pastes one outfit figure whose torso is unit pixels tall, centred on cx."""
    def put(label, x, y, size, mirror=False):
        canvas.paste(pool.pick(rng, label), label, x, y, int(size), rng, mirror)

    if rng.random() < 0.25:  # a dress, then shoes
        size = unit * rng.uniform(1.5, 1.8)
        put(DRESS, cx - size / 2, top, size)
        bottom = top + size * 0.97
    else:  # trousers first, so the top's hem covers the waist
        size = unit * rng.uniform(1.05, 1.25)
        trouser_top = top + unit * rng.uniform(0.82, 0.95)
        put(TROUSER, cx - size / 2, trouser_top, size)
        put(TOPS[rng.integers(len(TOPS))], cx - unit / 2, top, unit)
        bottom = trouser_top + size * 0.97
        if rng.random() < 0.2:  # a coat over the top, open to one side
            coat = unit * rng.uniform(1.0, 1.15)
            side = rng.choice([-1, 1])
            put(COAT, cx - coat / 2 + side * unit * rng.uniform(0.45, 0.6), top - unit * 0.05, coat)
    shoe = max(unit * rng.uniform(0.55, 0.7), 28)
    label = SHOES[rng.integers(len(SHOES))]
    y = bottom - shoe * 0.3
    if rng.random() < 0.5:  # a pair
        gap = shoe * rng.uniform(0.05, 0.25)
        put(label, cx - shoe - gap / 2, y, shoe)
        put(label, cx + gap / 2, y, shoe, mirror=True)
    else:
        put(label, cx - shoe / 2, y, shoe)
    if rng.random() < 0.3:  # a bag beside
        bag = unit * rng.uniform(0.6, 0.8)
        side = rng.choice([-1, 1])
        x = cx + side * unit * rng.uniform(0.6, 0.8) - (bag if side < 0 else 0)
        put(BAG, x, top + unit * rng.uniform(0.4, 0.9), bag)


def compose(rng, pool, size=None):
    """Returns one scene: (RGB uint8 [H, W, 3], its garments as a list of dicts)."""
    w, h = size or (int(rng.integers(224, 401)), int(rng.integers(192, 337)))
    canvas = _Canvas(_background(rng, h, w))
    _clutter(rng, canvas.rgb)
    unit = rng.uniform(44, min(96, h / 2.4))
    figures = int(rng.integers(1, int(np.clip(w / (1.4 * unit), 1, 3)) + 1))
    slots = (np.arange(figures) + rng.uniform(0.2, 0.8, figures)) / figures
    for slot in rng.permutation(slots):
        u = unit * rng.uniform(0.85, 1.15)
        cx = slot * (w + 0.4 * u) - 0.2 * u
        top = rng.uniform(-0.3 * u, max(h - 2.2 * u, 0) + 0.2 * u)
        _figure(rng, pool, canvas, cx, top, u)
    for _ in range(rng.integers(0, 4)):  # stray items, any category, mostly in free space
        label = int(rng.integers(len(fashion_mnist.LABELS)))
        s = int(rng.uniform(40, 96))
        spots = rng.uniform([-0.3 * s] * 2, [w - 0.7 * s, h - 0.7 * s], (6, 2))
        x, y = min(spots, key=lambda p: canvas.covered(p[0], p[1], s))
        canvas.paste(pool.pick(rng, label), label, x, y, s, rng, rng.random() < 0.5)
    return np.clip(np.round(canvas.rgb), 0, 255).astype(np.uint8), canvas.objects()


def scene(pool, seed, index, size=None):
    """Returns scene `index` of `seed` (deterministic)."""
    return compose(np.random.default_rng([seed, index]), pool, size)


def write_heldout(out_dir, count, seed=HELDOUT_SEED, size=None, data=None):
    """Writes count held-out scenes (test-split items only) as PNGs plus ground_truth.json."""
    pool = Pool("test", data)
    os.makedirs(out_dir, exist_ok=True)
    scenes = []
    for i in range(count):
        rgb, objects = scene(pool, seed, i, size)
        name = f"scene_{i:04d}.png"
        Image.fromarray(rgb).save(os.path.join(out_dir, name))
        scenes.append({"file": name, "width": rgb.shape[1], "height": rgb.shape[0], "objects": objects})
    truth = {"seed": seed, "split": "test", "types": COARSE, "labels": fashion_mnist.LABELS,
             "scenes": scenes}
    with open(os.path.join(out_dir, "ground_truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
    return truth


def _size(text):
    w, h = (int(v) for v in text.lower().split("x"))
    if w < 64 or h < 64:
        raise argparse.ArgumentTypeError("scene size must be at least 64x64")
    return w, h


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heldout", type=int, required=True, metavar="N", help="how many held-out scenes")
    parser.add_argument("--out", required=True, help="folder to write the PNGs and ground_truth.json to")
    parser.add_argument("--seed", type=int, default=HELDOUT_SEED)
    parser.add_argument("--size", type=_size, help="fixed WxH instead of varied sizes, e.g. 640x480")
    parser.add_argument("--data", help="folder with the Fashion-MNIST IDX files")
    args = parser.parse_args()
    truth = write_heldout(args.out, args.heldout, args.seed, args.size, args.data)
    n = sum(len(s["objects"]) for s in truth["scenes"])
    print(f"[scenes] wrote {args.heldout} held-out scenes with {n} garments to {args.out}")


if __name__ == "__main__":
    main()
