"""Scene composition: deterministic, tight boxes, occlusion and truncation, held-out split."""

import json

import numpy as np
import pytest
from PIL import Image

from atelier_train import fashion_mnist, scenes


def _square_items():
    """One item per label: a bright square of 20x20 pixels in a 28x28 black frame."""
    images = np.zeros((10, 28, 28), np.uint8)
    images[:, 4:24, 4:24] = 200
    return scenes.Pool("synthetic", arrays=(images, np.arange(10, dtype=np.uint8)))


@pytest.fixture(scope="module")
def test_pool():
    return scenes.Pool("test")


def test_coarse_types():
    by_type = {t: [fashion_mnist.LABELS[i] for i, c in enumerate(scenes.COARSE_OF) if scenes.COARSE[c] == t]
               for t in scenes.COARSE}
    assert by_type == {"top": ["T-shirt/top", "Pullover", "Coat", "Shirt"], "bottom": ["Trouser"],
                       "full-body": ["Dress"], "footwear": ["Sandal", "Sneaker", "Ankle boot"], "bag": ["Bag"]}


def test_scenes_are_deterministic(test_pool):
    a, objects_a = scenes.scene(test_pool, 3, 5)
    b, objects_b = scenes.scene(test_pool, 3, 5)
    c, _ = scenes.scene(test_pool, 3, 6)
    assert np.array_equal(a, b) and objects_a == objects_b
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_scenes_hold_outfits(test_pool):
    count, types = 0, set()
    for i in range(20):
        rgb, objects = scenes.scene(test_pool, 11, i)
        h, w, _ = rgb.shape
        assert 224 <= w <= 400 and 192 <= h <= 336 and rgb.dtype == np.uint8
        for o in objects:
            x0, y0, x1, y1 = o["box"]
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
            assert scenes.COARSE[scenes.COARSE_OF[o["class_index"]]] == o["type"]
        count += len(objects)
        types |= {o["type"] for o in objects}
    assert count >= 20 * 5 and types == set(scenes.COARSE)


def test_box_is_tight_on_the_visible_pixels():
    pool = _square_items()
    canvas = scenes._Canvas(np.zeros((100, 100, 3), np.float32))
    rng = np.random.default_rng(0)
    canvas.paste(pool.images[0], 0, 10, 20, 28, rng)  # square at x 14..34, y 24..44
    canvas.paste(pool.images[1], 1, 85, 50, 28, rng)  # cut by the right edge: x 89..100
    canvas.paste(pool.images[5], 5, 70, -16, 28, rng)  # cut by the top edge: y 0..8
    canvas.paste(pool.images[8], 8, 0, 0, 28, rng)  # bag (class 8) at 4..24
    canvas.paste(pool.images[2], 2, 1, 1, 28, rng)  # covers most of the bag
    top, trouser, sandal, bag, pullover = canvas.objects()
    assert top["box"] == [14, 24, 34, 44] and top["type"] == "top" and not top["difficult"]
    assert trouser["box"] == [89, 54, 100, 74] and not trouser["difficult"]  # 11 of 20 columns visible
    assert sandal["box"] == [74, 0, 94, 8] and sandal["difficult"]  # 8 of 20 rows visible
    assert bag["box"] == [4, 4, 24, 24] and bag["difficult"]  # only an L-shaped rim is visible
    assert pullover["box"] == [5, 5, 25, 25] and not pullover["difficult"]
    pixels = np.round(canvas.rgb)
    assert pixels[24:44, 14:34].min() > 120 and pixels[23, 26:34].max() == 0 and pixels[44, 14:34].max() == 0


def test_heldout_uses_only_test_items(tmp_path, monkeypatch):
    splits = []
    real = scenes.Pool

    def spy(split, data=None, arrays=None):
        splits.append(split)
        return real(split, data, arrays)

    monkeypatch.setattr(scenes, "Pool", spy)
    scenes.write_heldout(str(tmp_path), 1)
    assert splits == ["test"]


def test_heldout_command(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["scenes", "--heldout", "3", "--out", str(tmp_path), "--size", "320x240"])
    scenes.main()
    truth = json.load(open(tmp_path / "ground_truth.json"))
    assert truth["split"] == "test" and truth["types"] == scenes.COARSE and len(truth["scenes"]) == 3
    for s in truth["scenes"]:
        im = Image.open(tmp_path / s["file"])
        assert im.size == (320, 240) == (s["width"], s["height"]) and im.mode == "RGB"
        assert s["objects"] and all(set(o) >= {"box", "type", "label", "difficult"} for o in s["objects"])
    # The same seed writes the same scenes.
    again = scenes.write_heldout(str(tmp_path / "again"), 3, size=(320, 240))
    assert again["scenes"] == truth["scenes"]


def test_to_grey_matches_pil():
    rgb = np.random.default_rng(0).integers(0, 256, (17, 13, 3), dtype=np.uint8)
    assert np.array_equal(scenes.to_grey(rgb), np.asarray(Image.fromarray(rgb).convert("L")))
