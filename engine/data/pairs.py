"""Fashion-MNIST image pairs: "do these two images show the same class?"

An auxiliary task for pretraining (the chapter's face-verification idea):
same/different labels are far cheaper to collect than class labels, and a
network that learns to tell them apart has to learn features of the images.
Its lower layers can then be reused by a classifier trained on few labels.

Each example is a pair of images (a, b) with label 1 ("same") when both
show the same class and 0 ("different") otherwise; ``same_fraction`` of the
pairs are "same".  The images are standardized one by one with per-pixel
statistics of the training image pool (``standardize``), then combined:

* ``difference``: a - b (784 features).  A single standardized image is then
  the difference between that image and the mean image, so a classifier on
  single images can reuse every layer, the first one included
  (``reuse.standardize_like_source`` scales its images with this pool's
  statistics: the data set's ``mean``/``std`` are the single-image ones);
* ``concatenate``: [a, b] (1568 features); the first layer's kernel then has
  1568 inputs and only layers above it fit a single-image network.

Image pools do not overlap: training pairs use images of the official
training file, validation pairs ``val_images_per_class`` other images of it
per class, test pairs images of the official test file.  ``classes`` limits
the pool (for example to classes the downstream classifier will never see,
like a face-verification net trained on strangers).
"""
from __future__ import annotations

import numpy as np

from engine.errors import DataError, ExperimentError
from engine.params import Param
from engine.data.core import VALIDATION_SPLIT, DatasetSpec, finish, register, rngs
from engine.data.fashion import (CLASS_NAMES, ENV_VAR, PIXEL_STD_FLOOR, _pixel_stats, _to_float, fashion_files,
                                 files_source)


def _pairs(pools: list, n: int, same_fraction: float, rng) -> tuple:
    """(first, second, same) index arrays of n pairs over per-class pools of
    image indices; the two images of a pair are always distinct."""
    k = len(pools)
    sizes = np.array([len(p) for p in pools], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = np.concatenate(pools)
    n_same = int(round(n * same_fraction))
    ca = rng.integers(0, k, n)
    cb = ca.copy()
    cb[n_same:] = (ca[n_same:] + rng.integers(1, k, n - n_same)) % k
    a = rng.integers(0, sizes[ca])
    b = rng.integers(0, np.where(np.arange(n) < n_same, sizes[cb] - 1, sizes[cb]))
    b[:n_same] += b[:n_same] >= a[:n_same]  # skip the first image: a distinct second one
    same = (np.arange(n) < n_same).astype(np.int64)
    order = rng.permutation(n)
    return flat[offsets[ca] + a][order], flat[offsets[cb] + b][order], same[order]


def _val_pairs(p: dict) -> int:
    if p["val_pairs"] is not None:
        return p["val_pairs"]
    v = p["validation_split"]
    return int(p["pairs"] * v / (1.0 - v) + 0.5)


def _load(p: dict, seed: int):
    raw = fashion_files(p)
    files = raw.names
    tr_x, tr_y, shape, te_x, te_y = raw.train_x, raw.train_y, raw.shape, raw.test_x, raw.test_y
    classes = list(range(10)) if p["classes"] is None else p["classes"]
    g_pool, g_train, g_val, g_test = rngs(seed, 4)
    train_pool, val_pool = [], []
    for c in classes:
        idx = g_pool.permutation(np.flatnonzero(tr_y == c))
        n_val = p["val_images_per_class"]
        n_tr = len(idx) - n_val if p["images_per_class"] is None else p["images_per_class"]
        if n_tr < 2 or n_val < 2 or n_tr + n_val > len(idx):
            raise DataError(f"class {c} ({CLASS_NAMES[c]}) has {len(idx)} training images in "
                            f"{files['train_images']}; images_per_class={p['images_per_class']} and "
                            f"val_images_per_class={n_val} ask for {n_tr} + {n_val} (at least 2 each)")
        val_pool.append(idx[:n_val])
        train_pool.append(idx[n_val:n_val + n_tr])
    test_pool = [np.flatnonzero(te_y == c) for c in classes]
    d = tr_x.shape[1]
    all_train = np.concatenate(train_pool)
    if p["standardize"]:
        mean, std = _pixel_stats(tr_x, all_train)
        std = np.maximum(std, PIXEL_STD_FLOOR)
        scale, shift = 1.0 / (255.0 * std), mean / std
    else:
        mean, std = np.zeros(d), np.ones(d)
        scale, shift = np.full(d, 1.0 / 255.0), np.zeros(d)
    scale, shift = scale.astype(np.float32), shift.astype(np.float32)
    splits = {}
    for part, images, pools, n, g in (("train", tr_x, train_pool, p["pairs"], g_train),
                                      ("val", tr_x, val_pool, _val_pairs(p), g_val),
                                      ("test", te_x, test_pool, p["test_pairs"], g_test)):
        a, b, same = _pairs(pools, n, p["same_fraction"], g)
        if p["combine"] == "difference":
            x = _to_float(images, a, scale, shift)
            x -= _to_float(images, b, scale, shift)
        else:
            x = np.concatenate([_to_float(images, a, scale, shift), _to_float(images, b, scale, shift)], axis=1)
        splits[part] = (x, same)
    if p["combine"] == "concatenate":
        mean, std = np.tile(mean, 2), np.tile(std, 2)
        names = [f"{side}_pixel_{r}_{c}" for side in ("a", "b") for r in range(shape[0]) for c in range(shape[1])]
    else:
        names = [f"diff_pixel_{r}_{c}" for r in range(shape[0]) for c in range(shape[1])]
    return finish("fashion_mnist_pairs", "classification", splits, standardize=p["standardize"], n_classes=2,
                  class_names=["different", "same"], image_shape=None, feature_names=names, stats=(mean, std))


def _check(p: dict) -> None:
    classes = p["classes"]
    if classes is not None:
        if len(set(classes)) != len(classes):
            raise ExperimentError(f"data.classes must not repeat a class, got {classes}")
        if len(classes) < 2:
            raise ExperimentError(f"data.classes must list at least 2 classes (\"different\" pairs need two), "
                                  f"got {classes}")


register(DatasetSpec(
    name="fashion_mnist_pairs", kind="image",
    params={
        "path": Param(None, "Folder holding the four Fashion-MNIST IDX files. Empty: search "
                            f"${ENV_VAR} and the standard folders (see fashion_mnist).", "str", optional=True),
        "classes": Param(None, "Classes whose images make the pairs (0 T-shirt/top ... 9 Ankle boot). "
                               "Empty: all 10.", "ints", 0, 9, optional=True),
        "pairs": Param(20000, "Training pairs.", "int", 2, 1_000_000),
        "val_pairs": Param(None, "Validation pairs (from images held out of the training pool). Empty: "
                                 "validation_split of training + validation pairs.", "int", 0, 1_000_000,
                           optional=True),
        "validation_split": VALIDATION_SPLIT,
        "test_pairs": Param(2000, "Test pairs (from the official test file).", "int", 0, 1_000_000),
        "same_fraction": Param(0.5, "Fraction of pairs that show the same class.", "float", 0.0, 1.0,
                               low_open=True, high_open=True),
        "combine": Param("difference", "difference: a - b (784 features, every layer reusable by a "
                                       "single-image network); concatenate: [a, b] (1568 features).",
                         "choice", choices=("difference", "concatenate")),
        "images_per_class": Param(None, "Training-pool images per class. Empty: all that are not held out "
                                        "for validation.", "int", 2, 60000, optional=True),
        "val_images_per_class": Param(500, "Training-file images per class held out for validation pairs.",
                                      "int", 2, 60000),
        "standardize": Param(True, "Standardize each image with per-pixel statistics of the training pool "
                                   "before combining.", "bool"),
    },
    doc="Pairs of Fashion-MNIST images labelled 'same class' or 'different class': an auxiliary task "
        "for pretraining.",
    loader=_load, check=_check, sources=files_source))
