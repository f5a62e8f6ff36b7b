"""Synthetic data sets: TensorFlow-Playground-style 2-D classification and a
1-D regression curve.

Coordinates: every 2-D shape is drawn in its own unit size (outer circle
radius 1, moon radius 1, spiral radius 1, XOR square half-side 1, blob ring
radius 0.7) and then scaled so the noise-free points fill about [-5, 5] on
the wider axis, like the Playground's [-6, 6] view.  ``noise`` is the standard
deviation of Gaussian jitter in those unit sizes (0.1 = a tenth of the
circle's radius), so it means the same on every shape.  Classes are balanced
(sizes differ by at most one) and labels are the class a point was drawn
from, so noise can make classes overlap.
"""
from __future__ import annotations

import numpy as np

from engine.params import Param
from engine.data.core import DatasetSpec, common_params, finish, register, rngs, split_indices, take

SCALE = 5.0  # unit shapes -> about [-5, 5]


def _n_samples(default: int = 1000) -> Param:
    return Param(default, "Number of points generated (before the validation/test split).",
                 "int", 10, 1_000_000, log=True)


def _noise(default: float) -> Param:
    return Param(default, "Standard deviation of the Gaussian jitter, relative to the shape's "
                          "size (0.1 = a tenth of its radius).", "float", 0.0, 5.0)


def class_sizes(n: int, c: int) -> np.ndarray:
    """Balanced class sizes summing to n."""
    sizes = np.full(c, n // c, dtype=np.int64)
    sizes[: n % c] += 1
    return sizes


def _labels(n: int, c: int) -> np.ndarray:
    return np.repeat(np.arange(c, dtype=np.int64), class_sizes(n, c))


def circles(p: dict, rng: np.random.Generator) -> tuple:
    n = p["n_samples"]
    y = _labels(n, 2)                       # 0 = outer ring, 1 = inner ring
    radius = np.where(y == 0, 1.0, p["factor"])
    angle = rng.uniform(0.0, 2 * np.pi, n)
    pts = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return pts * SCALE, y, SCALE


def moons(p: dict, rng: np.random.Generator) -> tuple:
    n = p["n_samples"]
    y = _labels(n, 2)                       # 0 = upper moon, 1 = lower moon
    t = rng.uniform(0.0, np.pi, n)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    pts = np.where((y == 0)[:, None], upper, lower) - np.array([0.5, 0.25])
    scale = SCALE / 1.5                     # x spans [-1.5, 1.5] before scaling
    return pts * scale, y, scale


def xor(p: dict, rng: np.random.Generator) -> tuple:
    n = p["n_samples"]
    y = _labels(n, 2)                       # 0: x1*x2 > 0, 1: x1*x2 < 0
    gap = 0.06                              # keeps noise-free points off the axes
    mag = rng.uniform(gap, 1.0, (n, 2))
    sx = rng.choice([-1.0, 1.0], n)
    sy = np.where(y == 0, sx, -sx)
    return np.stack([mag[:, 0] * sx, mag[:, 1] * sy], axis=1) * SCALE, y, SCALE


def spirals(p: dict, rng: np.random.Generator) -> tuple:
    n, c = p["n_samples"], p["n_classes"]
    y = _labels(n, c)                       # arm k starts at angle 2*pi*k/c
    t = rng.uniform(0.0, 1.0, n)
    angle = 2 * np.pi * (p["turns"] * t + y / c)
    return np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1) * SCALE, y, SCALE


def blobs(p: dict, rng: np.random.Generator) -> tuple:
    n, c = p["n_samples"], p["n_classes"]
    y = _labels(n, c)                       # centres evenly on a ring of radius 0.7
    angle = 2 * np.pi * np.arange(c) / c + np.pi / 2
    centres = 0.7 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    pts = centres[y] + rng.normal(0.0, p["spread"], (n, 2))
    return pts * SCALE, y, SCALE


def _make_2d(name: str, gen, class_names):
    def load(p: dict, seed: int):
        g_points, g_noise, g_split = rngs(seed, 3)
        pts, y, scale = gen(p, g_points)
        if p["noise"] > 0:
            pts = pts + g_noise.normal(0.0, p["noise"] * scale, pts.shape)
        names = class_names(p) if callable(class_names) else class_names
        tr, va, te = split_indices(y, len(y), p["validation_split"], p["test_split"],
                                   g_split, stratify=True)
        pts = pts.astype(np.float32)
        return finish(name, "classification",
                      {"train": take(pts, y, tr), "val": take(pts, y, va), "test": take(pts, y, te)},
                      standardize=p["standardize"], n_classes=len(names), class_names=names,
                      feature_names=("x1", "x2"))
    return load


def _arms(p):
    return tuple(f"arm {k + 1}" for k in range(p["n_classes"]))


def _blobs(p):
    return tuple(f"blob {k + 1}" for k in range(p["n_classes"]))


_TWO_D = [
    ("circles", circles, ("outer", "inner"),
     "Two concentric rings (outer = class 0); noise-free, the radius alone separates them.",
     {"noise": _noise(0.1),
      "factor": Param(0.5, "Inner ring radius as a fraction of the outer ring's.",
                      "float", 0.0, 1.0, low_open=True, high_open=True)}),
    ("moons", moons, ("upper moon", "lower moon"),
     "Two interleaving half circles (scikit-learn's make_moons), centred.",
     {"noise": _noise(0.1)}),
    ("xor", xor, ("x1*x2 > 0", "x1*x2 < 0"),
     "Points in four quadrants; the class is the sign of x1*x2 (not linearly separable).",
     {"noise": _noise(0.1)}),
    ("spirals", spirals, _arms,
     "Interleaved spiral arms, one per class, starting at the centre.",
     {"noise": _noise(0.05),
      "n_classes": Param(2, "Number of spiral arms (classes).", "int", 2, 5),
      "turns": Param(1.75, "How many turns each arm makes.", "float", 0.25, 5.0)}),
    ("blobs", blobs, _blobs,
     "Gaussian clusters, one per class, evenly spaced on a ring.",
     {"noise": _noise(0.0),
      "n_classes": Param(3, "Number of clusters (classes).", "int", 2, 10),
      "spread": Param(0.15, "Standard deviation of each cluster, relative to the ring "
                            "radius of 1.", "float", 0.0, 2.0, low_open=True)}),
]

for _name, _gen, _cls, _doc, _extra in _TWO_D:
    register(DatasetSpec(
        name=_name, kind="2d",
        params={"n_samples": _n_samples(), **_extra, **common_params()},
        doc=_doc + " Seeded; classes balanced; points in about [-5, 5].",
        loader=_make_2d(_name, _gen, _cls)))


# ------------------------------------------------------------- 1-D regression

FUNCTIONS = {
    "sin": lambda x: np.sin(3.0 * x),
    "abs": lambda x: np.abs(x) * 2.0 - 1.0,
    "step": lambda x: np.where(x < 0.0, -0.5, 0.5),
}


def _load_regression_1d(p: dict, seed: int):
    g_points, g_noise, g_split = rngs(seed, 3)
    n = p["n_samples"]
    x = g_points.uniform(-1.0, 1.0, n)
    y = FUNCTIONS[p["function"]](x)
    if p["noise"] > 0:
        y = y + g_noise.normal(0.0, p["noise"], n)
    x = x.astype(np.float32)[:, None]
    y = y.astype(np.float32)[:, None]
    tr, va, te = split_indices(None, n, p["validation_split"], p["test_split"], g_split,
                               stratify=False)
    return finish("regression_1d", "regression",
                  {"train": take(x, y, tr), "val": take(x, y, va), "test": take(x, y, te)},
                  standardize=p["standardize"], feature_names=("x",))


register(DatasetSpec(
    name="regression_1d", kind="1d",
    params={"n_samples": _n_samples(),
            "noise": Param(0.1, "Standard deviation of the Gaussian noise added to y.",
                           "float", 0.0, 5.0),
            "function": Param("sin", "The curve to fit: sin = sin(3x), abs = 2|x| - 1, "
                                     "step = -0.5 / +0.5 with a jump at 0.",
                              "choice", choices=tuple(FUNCTIONS)),
            **common_params()},
    doc="x uniform in [-1, 1], y = f(x) + noise (targets not standardized). Task regression.",
    loader=_load_regression_1d))
