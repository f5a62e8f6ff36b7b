"""Data augmentation: the optional ``data.augment`` section and the batches it makes.

Chapter 11 ends its regularization tour with augmentation: show the network a
slightly different version of each training image every time it comes round,
so a small training set is harder to memorize.  The settings are declared once
(:data:`AUGMENT_PARAMS`) for the schema, the window's editors and the generated
docs.  :class:`Augmenter` turns a chunk of the epoch's batches into augmented
rows with one compiled call (:func:`engine.kernels.augment.augment_chunk`);
the trainer swaps them in for the plain rows and nothing else changes.
Validation, test, the probe batch and every evaluation read the untouched data,
and nothing about augmentation is stored with the weights.

Each batch's draws come from (seed, epoch, batch index) alone, so the same seed
gives bit-identical runs and a resumed run needs no extra state.
"""
from __future__ import annotations

import concurrent.futures
from typing import Any, Mapping

import numpy as np

from engine.errors import ExperimentError
from engine.kernels import augment as K
from engine.params import Param, check_params

AUGMENT_DOC = ("Optional; missing or null: no augmentation. Every training batch is transformed anew "
               "(flip, rotation and zoom about the centre, shift, crop), then its pixels jittered "
               "(contrast, brightness, noise), drawn from the seed, the epoch and the batch; validation "
               "and test images are never changed. Not for the reconstruction task.")

AUGMENT_PARAMS = {
    "shift": Param(0.0, "Largest random translation in pixels along each axis (uniform in [-shift, shift]; "
                        "fractions of a pixel are interpolated).", low=0.0, high=64.0),
    "rotation": Param(0.0, "Largest random rotation in degrees, either way, about the image centre.",
                      low=0.0, high=180.0),
    "scale": Param(0.0, "Random zoom: each image is resized by a factor uniform in [1 - scale, 1 + scale] "
                        "about its centre.", low=0.0, high=0.9),
    "flip": Param(0.0, "Probability of mirroring an image left to right.", low=0.0, high=1.0),
    "flip_exclude": Param([], "Class labels (0..C-1, as the run numbers them) never flipped, for classes a "
                              "mirror would turn into another (a 'b' into a 'd').", "ints", low=0),
    "crop_padding": Param(0, "Random crop with padding: pad the image with this many black pixels on each "
                             "side and crop back to its size at a random place (a whole-pixel shift).",
                          "int", 0, 64),
    "brightness": Param(0.0, "Added to every pixel of an image, uniform in [-brightness, brightness], in the "
                             "data's original units (Fashion-MNIST pixels run from 0 to 1).", low=0.0, high=10.0),
    "contrast": Param(0.0, "Pixels' distance to the image's mean multiplied by a factor uniform in "
                           "[1 - contrast, 1 + contrast].", low=0.0, high=0.95),
    "noise": Param(0.0, "Standard deviation of Gaussian white noise added to every pixel, in the data's "
                        "original units: the change the book says does not help.", low=0.0, high=10.0),
}

_CFG_COLUMNS = {"shift": K.CFG_SHIFT, "rotation": K.CFG_ROTATION, "scale": K.CFG_SCALE, "flip": K.CFG_FLIP,
                "crop_padding": K.CFG_CROP_PADDING, "brightness": K.CFG_BRIGHTNESS,
                "contrast": K.CFG_CONTRAST, "noise": K.CFG_NOISE}

WHERE = "data.augment"


def resolve_augment(value: Any, dataset: str, kind: str, task: str | None) -> dict | None:
    """The validated ``data.augment`` section with every default filled, or None when it is
    missing or null.  Data sets that are not images (``kind`` other than "image" or "file")
    and the reconstruction task (the targets are the inputs) are refused here; a file's
    image shape is only known once it is read (:meth:`Augmenter.for_dataset` checks it)."""
    if value is None:
        return None
    if kind not in ("image", "file"):
        raise ExperimentError(f"{WHERE}: dataset {dataset!r} is not image data; augmentation needs images "
                              f"(fashion_mnist, or an npz file whose x holds (n, height, width) images). "
                              f"Remove data.augment or pick an image data set")
    if task == "reconstruction":
        raise ExperimentError(f"{WHERE}: the reconstruction task trains the network to reproduce its input, "
                              f"so augmented inputs would need augmented targets; remove data.augment or "
                              f"use task 'classification'")
    out = check_params(AUGMENT_PARAMS, value, WHERE)
    out["flip_exclude"] = sorted(set(out["flip_exclude"]))
    return out


def is_active(augment: Mapping | None) -> bool:
    """True when the section changes any image (every setting at 0 leaves them as they are)."""
    return augment is not None and any(augment[key] for key in _CFG_COLUMNS)


def describe(augment: Mapping | None) -> str:
    """One line saying which augmentation is on, for run notes and reports."""
    if not is_active(augment):
        return "no data augmentation"
    parts = []
    for key, fmt in (("shift", "shift ±{:g} px"), ("rotation", "rotation ±{:g}°"), ("scale", "zoom ±{:.0%}"),
                     ("flip", "flip p={:g}"), ("crop_padding", "crop with {} px padding"),
                     ("brightness", "brightness ±{:g}"), ("contrast", "contrast ±{:.0%}"),
                     ("noise", "Gaussian noise σ={:g}")):
        if augment[key]:
            parts.append(fmt.format(augment[key]))
    if augment["flip"] and augment["flip_exclude"]:
        parts.append("never flipped: classes " + ", ".join(str(c) for c in augment["flip_exclude"]))
    return "data augmentation: " + ", ".join(parts)


def config_vector(augment: Mapping) -> np.ndarray:
    """The settings as the kernel reads them, (N_CFG,) float64."""
    cfg = np.zeros(K.N_CFG)
    for key, column in _CFG_COLUMNS.items():
        cfg[column] = float(augment[key])
    return cfg


class Augmenter:
    """Augmented rows for the trainer's chunks of batches.

    :meth:`chunk` has the trainer's own arguments (training set, epoch order,
    batch starts, first batch, count) and returns replacements for them: the
    augmented rows of just those batches, in order, with matching labels.  While
    the trainer runs a chunk, the next chunk of the same epoch is prepared on
    another thread (the kernel releases the GIL), which hides most of its cost
    on a second core; the rows are a function of (seed, epoch, batch) only, so
    prepared and freshly made rows are the same bits.
    """

    def __init__(self, augment: Mapping, image_shape: tuple, mean: np.ndarray, std: np.ndarray, seed: int,
                 n_classes: int, dtype=np.float32):
        self.settings = dict(augment)
        self.height, self.width = (int(s) for s in image_shape)
        self.mean = np.ascontiguousarray(mean, dtype=np.float64)
        self.std = np.ascontiguousarray(std, dtype=np.float64)
        self.seed = int(seed) % (1 << 64)
        self.cfg = config_vector(augment)
        self.flip_allowed = np.ones(max(1, n_classes), dtype=np.uint8)
        for c in augment["flip_exclude"]:
            self.flip_allowed[c] = 0
        self.dtype = dtype
        self.prefetch = True   # prepare the next chunk in the background (False: only when asked; the benchmark's baseline)
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._ahead: tuple | None = None    # (key, future) of the chunk prepared in the background

    @classmethod
    def for_dataset(cls, augment: Mapping | None, dataset, seed: int, dtype=np.float32) -> "Augmenter | None":
        """An augmenter for ``dataset``'s training split, or None when ``augment`` changes nothing.
        Raises ExperimentError naming the key when the data cannot be augmented."""
        if not is_active(augment):
            return None
        if dataset.image_shape is None or len(dataset.image_shape) != 2:
            raise ExperimentError(f"{WHERE}: {dataset.name!r} holds no images (its rows are not (height, width) "
                                  f"pictures); augmentation needs image data, e.g. an npz file whose x has shape "
                                  f"(n, height, width)")
        if dataset.task == "reconstruction":
            raise ExperimentError(f"{WHERE}: not available for the reconstruction task (targets are the inputs)")
        bad = [c for c in augment["flip_exclude"] if c >= max(1, dataset.n_classes)]
        if bad:
            raise ExperimentError(f"{WHERE}.flip_exclude: class {bad[0]} does not exist; this data has "
                                  f"{dataset.n_classes} classes (0..{dataset.n_classes - 1})")
        return cls(augment, dataset.image_shape, dataset.mean, dataset.std, seed, dataset.n_classes, dtype)

    def describe(self) -> str:
        return describe(self.settings)

    def rows(self, x, y_int, order, starts, epoch: int, first_batch: int) -> np.ndarray:
        """The augmented rows of batches first_batch.. (``starts`` their boundaries in ``order``)."""
        out = np.empty((int(starts[-1] - starts[0]), x.shape[1]), dtype=self.dtype)
        K.augment_chunk(x, y_int, order, np.ascontiguousarray(starts, dtype=np.int64), self.seed, int(epoch),
                        int(first_batch), self.height, self.width, self.mean, self.std, self.cfg,
                        self.flip_allowed, out)
        return out

    def chunk(self, data, order, starts, first_batch: int, n: int, epoch: int) -> tuple:
        """(data, order, starts, first batch) for ``n`` steps from ``first_batch``: the augmented
        rows of those batches as a training set of their own, walked in order."""
        sl = starts[first_batch:first_batch + n + 1]
        x = self._prepared(epoch, order, first_batch, n, sl)
        if x is None:
            x = self.rows(data.x, data.y_int, order, sl, epoch, first_batch)
        self._prepare(data, order, starts, first_batch + n, n, epoch)
        idx = order[sl[0]:sl[-1]]
        labels = data.y_int[idx] if len(data.y_int) else data.y_int
        targets = data.y_float[idx] if len(data.y_float) else data.y_float
        local = np.arange(len(idx), dtype=np.int64)
        return type(data)(*(_like(new, old) for new, old in zip((x, labels, targets), data))), local, \
            (sl - sl[0]).astype(np.int64), 0

    def _prepared(self, epoch: int, order, first_batch: int, n: int, sl) -> np.ndarray | None:
        """The rows of the ``n`` batches from ``first_batch`` if the background made at least those."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return None
        (a_epoch, a_order, a_first, a_n), future = ahead
        rows = future.result()   # always collected: no two makers at once
        if (a_epoch, a_order, a_first) != (epoch, id(order), first_batch) or a_n < n:
            return None
        return rows[:int(sl[-1] - sl[0])]

    def _prepare(self, data, order, starts, first_batch: int, n: int, epoch: int) -> None:
        """Start making the epoch's next ``n`` batches in the background (guessing the trainer keeps
        its chunk size; a wrong guess is thrown away)."""
        n = min(n, len(starts) - 1 - first_batch)
        if n <= 0 or not self.prefetch:
            return
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="augment")
        sl = starts[first_batch:first_batch + n + 1].copy()
        future = self._pool.submit(self.rows, data.x, data.y_int, order, sl, epoch, first_batch)
        self._ahead = ((epoch, id(order), first_batch, n), future)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _like(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """``new`` read-only when ``old`` is: the compiled step loop keys its compilations on it."""
    if not old.flags.writeable:
        new.setflags(write=False)
    return new
