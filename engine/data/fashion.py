"""Fashion-MNIST from the four IDX files (gzipped or not).

Where the files are looked for, in order, stopping at the first folder that
holds all four:

1. ``data.path`` when given, and then nowhere else (a typo in a path the user
   named must not silently fall back to another copy);
2. ``$DESCENT_DATA_DIR`` and ``$DESCENT_DATA_DIR/fashion-mnist``;
3. ``~/.keras/datasets/fashion-mnist`` (where Keras downloads them),
   ``~/.cache/descent/fashion-mnist``, ``/usr/share/datasets/fashion-mnist``
   (the Debian package ``dataset-fashion-mnist``), ``./data/fashion-mnist``
   and ``<repository>/data/fashion-mnist``.

Decoded files are kept in memory per process (keyed by path, size and
modification time), so a second load costs only the float conversion.

Subsetting: ``classes`` picks and orders the classes (labels become 0..k-1 in
the order given: [5, 6] makes Sandal 0 and Shirt 1).  ``per_class`` samples
exactly that many training images per class from the official training file
*before* the validation split and independently of it: the training split
then holds exactly ``per_class * len(classes)`` images (the book's "200
labeled images" for task B is ``classes=[5, 6], per_class=100``).  The
validation images come from the rest of the training file:
``val_per_class`` per class if given, otherwise enough to make them
``validation_split`` of training + validation.  The test split is the
official 10k test file restricted to the classes (``test_per_class`` samples
it).  Pixels are scaled to [0, 1] before standardization.
"""
from __future__ import annotations

import gzip
import math
import os
import threading
import zlib
from pathlib import Path

from dataclasses import dataclass

import numpy as np

from engine.errors import DataError, ExperimentError
from engine.limits import format_bytes, memory_limit
from engine.params import Param
from engine.data.core import (DatasetSpec, common_params, finish, load_source, register, rngs, split_indices,
                              user_path)

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
ENV_VAR = "DESCENT_DATA_DIR"
PIXEL_STD_FLOOR = 0.05  # on the [0, 1] pixel scale: a near-blank pixel's z-score stays <= 20
HOW_TO_GET = (
    "To get them: `apt-get install dataset-fashion-mnist` (installs to "
    "/usr/share/datasets/fashion-mnist), or download the four files "
    "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
    "t10k-labels-idx1-ubyte.gz from the Fashion-MNIST project into one of the folders above, "
    f"or set data.path (or ${ENV_VAR}) to the folder that holds them.")


SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian: dataset-fashion-mnist
REPO_DIR = Path(__file__).resolve().parents[2] / "data" / "fashion-mnist"


def standard_locations() -> list:
    """Folders searched when data.path is not given, in order."""
    dirs = []
    env = os.environ.get(ENV_VAR)
    if env:
        base = user_path(env)
        dirs += [base, base / "fashion-mnist"]
    home = Path(os.path.expanduser("~"))
    dirs += [home / ".keras" / "datasets" / "fashion-mnist",
             home / ".cache" / "descent" / "fashion-mnist",
             SYSTEM_DIR,
             Path.cwd() / "data" / "fashion-mnist",
             REPO_DIR]
    seen, out = set(), []
    for d in dirs:
        key = os.path.abspath(d)
        if key not in seen:
            seen.add(key)
            out.append(Path(key))
    return out


def _find_in(folder: Path) -> tuple:
    """(files found: role -> path, names missing)."""
    found, missing = {}, []
    for role, stem in FILES.items():
        alt = stem.replace("-idx", ".idx")  # the original site's spelling
        for cand in (stem + ".gz", stem, alt + ".gz", alt):
            if (folder / cand).is_file():
                found[role] = folder / cand
                break
        else:
            missing.append(stem + ".gz")
    return found, missing


def locate(path: str | None) -> dict:
    """Paths of the four files, or DataError saying every place looked."""
    folders = [user_path(path)] if path else standard_locations()
    report = []
    for folder in folders:
        if not folder.is_dir():
            report.append(f"  {folder}: no such folder")
            continue
        found, missing = _find_in(folder)
        if not missing:
            return found
        report.append(f"  {folder}: missing {', '.join(missing)}")
    where = "in data.path" if path else "in any of these folders"
    raise DataError(f"Fashion-MNIST files not found {where}:\n" + "\n".join(report) + "\n" + HOW_TO_GET)


# ------------------------------------------------------------------ decoding

_CACHE: dict = {}
_LOCK = threading.Lock()


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX ubyte file (gzipped or not) as an array, read within the size its header declares:
    the header is read first, its size checked against the memory limit, then exactly that many
    bytes are read (decompressed), so a file claiming or expanding to more (a gzip bomb) is
    refused before it is held in memory."""
    header_len = 4 + 4 * ndim
    try:
        if path.stat().st_size > memory_limit():
            raise DataError(f"{path} is {format_bytes(path.stat().st_size)}, more than the memory limit of "
                            f"{format_bytes(memory_limit())}; not a Fashion-MNIST file")
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as f:
            head = f.read(header_len)
            dims = _check_header(path, head, ndim)
            size = math.prod(dims)
            if size > memory_limit():
                raise DataError(f"{path}: its header declares {' x '.join(map(str, dims))} = {format_bytes(size)} "
                                f"of data, more than the memory limit of {format_bytes(memory_limit())}; the file is "
                                f"damaged or not Fashion-MNIST")
            body = f.read(size)
            extra = len(f.read(1))
    except DataError:
        raise
    except EOFError:
        raise DataError(f"{path} is truncated (the gzip stream ends early); download it again") from None
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{path} is not a valid gzip file ({exc}); download it again") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(body) != size or extra:
        raise DataError(f"{path} is truncated or corrupt: header says {' x '.join(map(str, dims))} "
                        f"= {size} bytes of data, the file has {'more' if extra else len(body)}")
    return np.frombuffer(body, np.uint8).reshape(dims)


def _check_header(path: Path, data: bytes, ndim: int) -> tuple:
    """The dimensions an IDX header declares, after checking its magic number."""
    magic = 0x800 + ndim  # unsigned bytes, ndim dimensions
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is not an IDX file: only {len(data)} bytes")
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        raise DataError(f"{path} is not an IDX{ndim} ubyte file: magic number 0x{got:08x}, "
                        f"expected 0x{magic:08x} (wrong or corrupt file)")
    return tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))


def _load_pair(images: Path, labels: Path) -> tuple:
    """(images (n, rows*cols) uint8, labels (n,) uint8, (rows, cols)), cached."""
    key = []
    for p in (images, labels):
        st = p.stat()
        key.append((str(p), st.st_size, st.st_mtime_ns))
    key = tuple(key)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            return hit
        x = _read_idx(images, 3)
        y = _read_idx(labels, 1)
        if len(x) != len(y):
            raise DataError(f"{images} holds {len(x)} images but {labels} holds {len(y)} labels")
        if len(y) and int(y.max()) >= len(CLASS_NAMES):
            raise DataError(f"{labels} has label {int(y.max())}; Fashion-MNIST labels are 0..9")
        shape = x.shape[1:]
        if len(x) == 0 or math.prod(shape) == 0:
            raise DataError(f"{images} holds {len(x)} images of {' x '.join(map(str, shape))} pixels; "
                            f"Fashion-MNIST needs images with pixels")
        x = x.reshape(len(x), math.prod(shape))
        x.setflags(write=False)
        y.setflags(write=False)
        _CACHE[key] = hit = (x, y, shape)
        return hit


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


@dataclass(frozen=True)
class FashionFiles:
    """The four files decoded: what every Fashion-MNIST loader reads from disk, and what a job's
    driver ships to workers that do not have the files (see :func:`engine.data.core.preloaded`)."""
    names: dict            # role (FILES' keys) -> the file it was read from, for messages
    train_x: np.ndarray    # (60000, 784) uint8, read-only
    train_y: np.ndarray    # (60000,) uint8
    test_x: np.ndarray
    test_y: np.ndarray
    shape: tuple           # (rows, cols) of an image


def _read_files(path: str | None) -> FashionFiles:
    files = locate(path)
    tr_x, tr_y, shape = _load_pair(files["train_images"], files["train_labels"])
    te_x, te_y, te_shape = _load_pair(files["test_images"], files["test_labels"])
    if te_shape != shape:
        raise DataError(f"{files['test_images']} has {te_shape} images but "
                        f"{files['train_images']} has {shape}")
    return FashionFiles({role: str(f) for role, f in files.items()}, tr_x, tr_y, te_x, te_y, shape)


def files_source(params: dict) -> dict:
    """The one source of the Fashion-MNIST data sets (``sources`` of their catalogue entries):
    the files ``data.path`` names (or the standard locations)."""
    path = params["path"]
    return {f"fashion_mnist:{path or ''}": lambda: _read_files(path)}


def fashion_files(params: dict) -> FashionFiles:
    """The decoded files, shipped or read here (:func:`engine.data.core.read_source`)."""
    return load_source(files_source, params)


# ------------------------------------------------------------------ loading

def _sample(idx_by_class: list, count, rng) -> list:
    return [rng.permutation(idx)[:count] if count is not None else rng.permutation(idx)
            for idx in idx_by_class]


_CHUNK = 4096  # rows per block: keeps temporaries in cache


def _pixel_stats(images: np.ndarray, idx: np.ndarray) -> tuple:
    """(mean, std) float64 per pixel on the [0, 1] scale of images[idx]."""
    d = images.shape[1]
    total, squares = np.zeros(d), np.zeros(d)
    for start in range(0, len(idx), _CHUNK):
        block = np.multiply(images[idx[start:start + _CHUNK]], np.float32(1.0 / 255.0),
                            dtype=np.float32)
        total += np.einsum("ij->j", block)
        squares += np.einsum("ij,ij->j", block, block)
    n = max(len(idx), 1)
    mean = total / n
    return mean, np.sqrt(np.maximum(squares / n - mean * mean, 0.0))


def _to_float(images: np.ndarray, idx: np.ndarray, scale: np.ndarray,
              shift: np.ndarray) -> np.ndarray:
    """images[idx] * scale - shift as a fresh float32 (n, d) array, in blocks
    (one pass over the output; no uint8 or float temporaries of full size)."""
    out = np.empty((len(idx), images.shape[1]), np.float32)
    for start in range(0, len(idx), _CHUNK):
        block = out[start:start + _CHUNK]
        np.multiply(images[idx[start:start + _CHUNK]], scale, out=block, casting="unsafe")
        block -= shift
    return out


def _load(p: dict, seed: int):
    raw = fashion_files(p)
    files = raw.names
    tr_x, tr_y, shape, te_x, te_y = raw.train_x, raw.train_y, raw.shape, raw.test_x, raw.test_y
    classes = list(range(10)) if p["classes"] is None else p["classes"]
    g_pick, g_split, g_test = rngs(seed, 3)

    by_class = [np.flatnonzero(tr_y == c) for c in classes]
    per, val_per = p["per_class"], p["val_per_class"]
    if per is None and val_per is None:
        pool = np.concatenate(by_class)
        labels = np.concatenate([np.full(len(ix), k) for k, ix in enumerate(by_class)])
        tr, va, _ = split_indices(labels, len(pool), p["validation_split"], 0.0, g_split, True)
        train_idx, val_idx = pool[tr], pool[va]
        train_lab, val_lab = labels[tr], labels[va]
    else:
        train_parts, val_parts = [], []
        for k, idx in enumerate(by_class):
            idx = g_pick.permutation(idx)
            n_tr = len(idx) - (val_per or 0) if per is None else per
            if per is not None and val_per is None:
                v = p["validation_split"]
                n_va = int(per * v / (1.0 - v) + 0.5)
            else:
                n_va = val_per
            if n_tr < 1 or n_tr + n_va > len(idx):
                raise DataError(
                    f"class {classes[k]} ({CLASS_NAMES[classes[k]]}) has {len(idx)} training images "
                    f"in {files['train_images']}; per_class={per} and val_per_class={val_per} "
                    f"ask for {n_tr if per is not None else 'the rest'} + {n_va}")
            train_parts.append(idx[:n_tr])
            val_parts.append(idx[n_tr:n_tr + n_va])
        lab = lambda parts: np.concatenate([np.full(len(ix), k) for k, ix in enumerate(parts)])
        train_lab, val_lab = lab(train_parts), lab(val_parts)
        train_idx, val_idx = np.concatenate(train_parts), np.concatenate(val_parts)
        order = g_split.permutation(len(train_idx))
        train_idx, train_lab = train_idx[order], train_lab[order]
        order = g_split.permutation(len(val_idx))
        val_idx, val_lab = val_idx[order], val_lab[order]

    test_parts = [np.flatnonzero(te_y == c) for c in classes]
    if p["test_per_class"] is not None:
        for k, idx in enumerate(test_parts):
            if len(idx) < p["test_per_class"]:
                raise DataError(f"class {classes[k]} ({CLASS_NAMES[classes[k]]}) has only {len(idx)} "
                                f"images in {files['test_images']}; test_per_class="
                                f"{p['test_per_class']}")
        test_parts = _sample(test_parts, p["test_per_class"], g_test)
    test_lab = np.concatenate([np.full(len(ix), k) for k, ix in enumerate(test_parts)])
    test_idx = np.concatenate(test_parts)
    order = g_test.permutation(len(test_idx))
    test_idx, test_lab = test_idx[order], test_lab[order]

    d = tr_x.shape[1]
    if p["standardize"]:  # z = (pixel / 255 - mean) / std = pixel * scale - shift
        mean, std = _pixel_stats(tr_x, train_idx)
        std = np.maximum(std, PIXEL_STD_FLOOR)
        scale, shift = 1.0 / (255.0 * std), mean / std
    else:
        mean, std = np.zeros(d), np.ones(d)
        scale, shift = np.full(d, 1.0 / 255.0), np.zeros(d)
    scale, shift = scale.astype(np.float32), shift.astype(np.float32)
    splits = {"train": (_to_float(tr_x, train_idx, scale, shift), train_lab),
              "val": (_to_float(tr_x, val_idx, scale, shift), val_lab),
              "test": (_to_float(te_x, test_idx, scale, shift), test_lab)}
    rows, cols = shape
    return finish("fashion_mnist", p["task"], splits, standardize=p["standardize"],
                  n_classes=len(classes), class_names=[CLASS_NAMES[c] for c in classes],
                  image_shape=shape, stats=(mean, std), input_scale=1.0 / 255.0,
                  feature_names=[f"pixel_{r}_{c}" for r in range(rows) for c in range(cols)])


def _check(p: dict) -> None:
    classes = p["classes"]
    if classes is not None:
        if len(set(classes)) != len(classes):
            raise ExperimentError(f"data.classes must not repeat a class, got {classes}")
        need = 2 if p["task"] == "classification" else 1
        if len(classes) < need:
            raise ExperimentError(f"data.classes must list at least {need} class(es) for task "
                                  f"{p['task']!r}, got {classes}")


register(DatasetSpec(
    name="fashion_mnist", kind="image",
    params={
        "path": Param(None, "Folder holding the four IDX files (.gz or not). Empty: search "
                            f"${ENV_VAR}, ~/.keras/datasets/fashion-mnist, "
                            "~/.cache/descent/fashion-mnist, /usr/share/datasets/fashion-mnist, "
                            "./data/fashion-mnist.", "str", optional=True),
        "classes": Param(None, "Class indices to keep, in the order that becomes labels 0..k-1 "
                               "(0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, "
                               "6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot). Empty: all 10. Task A of "
                               "the book: [0, 1, 2, 3, 4, 7, 8, 9]; task B: [5, 6].",
                         "ints", 0, 9, optional=True),
        "per_class": Param(None, "Training images per class, sampled (seeded) from the official "
                                 "training file; the validation images are drawn from the rest. "
                                 "Empty: all.", "int", 1, 60000, optional=True),
        "val_per_class": Param(None, "Validation images per class. Empty: validation_split of "
                                     "training + validation.", "int", 0, 60000, optional=True),
        "test_per_class": Param(None, "Test images per class from the official test file. "
                                      "Empty: all (1000 per class).", "int", 0, 10000,
                                optional=True),
        "task": Param("classification", "classification: labels; reconstruction: targets are "
                                        "the (scaled) images, for autoencoder pretraining.",
                      "choice", choices=("classification", "reconstruction")),
        **common_params(test_split=False),
    },
    doc="Zalando's 28x28 grey clothing images, 10 classes, 60k training + 10k test images; "
        "pixels scaled to [0, 1].",
    loader=_load, check=_check, sources=files_source))
