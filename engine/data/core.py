"""The data set contract: :class:`Dataset`, the catalogue and the shared steps.

Every loader returns a :class:`Dataset` built by :func:`finish`, which splits
(deterministically from the seed, stratified for classification),
standardizes with training statistics only and freezes the arrays.  The
catalogue :data:`DATASETS` maps a name to a :class:`DatasetSpec`; its
``params`` describe every key the ``data`` section may hold for that set
(the common ones included), so the schema, the GUI and the docs read one
description.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from engine.data.augment import resolve_augment
from engine.errors import DataError, ExperimentError, nearest
from engine.params import Param, check_params
from engine.registry import Registry

TASKS = ("classification", "regression", "reconstruction")
KINDS = ("2d", "1d", "image", "file")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train / validation / test arrays plus what is needed to show them.

    Arrays are read-only (they may be shared between threads and, for the
    "reconstruction" task, ``y_*`` is the very same array as ``x_*``).
    ``x_*`` are (n, d) float32 C-contiguous, standardized with the training
    statistics ``mean``/``std`` when ``standardize`` was requested.
    ``y_*`` are (n,) int64 labels 0..C-1 for "classification", (n, k) float32
    for "regression" and "reconstruction".
    """

    name: str
    task: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    class_names: tuple
    image_shape: tuple | None
    feature_names: tuple
    mean: np.ndarray
    std: np.ndarray
    # the loader's fixed scaling before the statistics: (original units) * input_scale is what
    # mean/std describe; 1/255 for images read as 0-255 pixels, 1 for everything else
    input_scale: float = 1.0

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """Units an output layer needs: C for classification (use 1 sigmoid
        unit instead when C == 2 if you prefer), k for the other tasks."""
        if self.task == "classification":
            return self.n_classes
        return int(self.y_train.shape[1])

    def to_original(self, x) -> np.ndarray:
        """Undo the standardization: (n, d) or (d,) -> same shape, float32."""
        x = np.asarray(x, dtype=np.float32)
        if x.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"expected {self.mean.shape[0]} features, got shape {x.shape}")
        return (x * self.std + self.mean).astype(np.float32, copy=False)

    def standardize(self, x) -> np.ndarray:
        """Map original-space points to what the network sees, float32."""
        x = np.asarray(x, dtype=np.float32)
        if x.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"expected {self.mean.shape[0]} features, got shape {x.shape}")
        return np.ascontiguousarray((x - self.mean) / self.std, dtype=np.float32)


@dataclass(frozen=True)
class DatasetSpec:
    """One catalogue entry.

    ``loader(params, seed) -> Dataset`` receives the resolved ``data`` dict
    (every key of ``params`` present).  ``check(params)`` is an optional
    cross-key validation raising ExperimentError.  ``sources(params)`` (data
    sets read from files only) maps each source key the loader reads through
    :func:`read_source` to a function reading it from disk.
    """

    name: str
    kind: str
    params: dict
    doc: str
    loader: Callable[[dict, int], Dataset]
    check: Callable[[dict], None] | None = None
    sources: Callable[[dict], dict[str, Callable[[], Any]]] | None = None


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register(spec: DatasetSpec) -> DatasetSpec:
    if spec.kind not in KINDS:
        raise ValueError(f"dataset kind must be one of {KINDS}, got {spec.kind!r}")
    return DATASETS.add(spec.name, spec)


# ----------------------------------------------------------------- common keys

VALIDATION_SPLIT = Param(0.1, "Fraction of the examples held out for validation "
                              "(stratified by class for classification).",
                         "float", 0.0, 1.0, high_open=True)
TEST_SPLIT = Param(0.0, "Fraction of the examples held out as a test set.",
                   "float", 0.0, 1.0, high_open=True)
STANDARDIZE = Param(True, "Shift and scale every input feature to mean 0 and "
                          "standard deviation 1 using the training split only.", "bool")


def common_params(test_split: bool = True) -> dict:
    out = {"validation_split": VALIDATION_SPLIT}
    if test_split:
        out["test_split"] = TEST_SPLIT
    out["standardize"] = STANDARDIZE
    return out


def task_param(choices: tuple, default: str, doc: str) -> Param:
    return Param(default, doc, "choice", choices=choices)


# ------------------------------------------------------------ config handling

def resolve_data_config(config: Mapping) -> dict:
    """Validate the ``data`` section and fill defaults.

    Returns a new dict with ``name`` first and every parameter of that data
    set.  Raises ExperimentError naming the offending key ("data.noise must
    be ..."); unknown keys are rejected with the nearest valid name.
    """
    if not isinstance(config, Mapping):
        raise ExperimentError(f"data must be an object with at least a 'name', got {config!r}")
    if "name" not in config:
        raise ExperimentError(f"data.name is required; allowed: {', '.join(DATASETS.names())}")
    name = config["name"]
    if not isinstance(name, str):
        raise ExperimentError(f"data.name must be a string, got {name!r}; "
                              f"allowed: {', '.join(DATASETS.names())}")
    if name not in DATASETS:
        raise ExperimentError(f"data.name: unknown dataset {name!r}{nearest(name, DATASETS.names())}; "
                              f"allowed: {', '.join(DATASETS.names())}")
    spec = DATASETS.get(name)
    values = check_params(spec.params, config, "data", ignore=("name", "augment"))
    for key, param in spec.params.items():
        if values[key] is None and param.default is None and not param.optional:
            raise ExperimentError(f"data.{key} is required for dataset {name!r}: {param.doc}")
    if values.get("validation_split", 0.0) + values.get("test_split", 0.0) >= 1.0:
        raise ExperimentError(
            f"data.validation_split + data.test_split must be < 1 (leave some training data), "
            f"got {values['validation_split']:g} + {values['test_split']:g}")
    if spec.check is not None:
        spec.check(values)
    augment = resolve_augment(config.get("augment"), name, spec.kind, values.get("task"))
    # only when given: experiments without it resolve exactly as before augmentation existed
    return {"name": name, **values, **({} if augment is None else {"augment": augment})}


def load_dataset(config: Mapping, seed: int) -> Dataset:
    """Resolve ``config`` (the ``data`` section) and load the data set."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ExperimentError(f"seed must be an integer, got {seed!r}")
    values = resolve_data_config(config)
    return DATASETS.get(values["name"]).loader(values, int(seed))


# ------------------------------------------------------------ shipped sources

_SHIPPED: dict[str, Any] = {}
_SHIPPED_LOCK = threading.Lock()


def data_sources(config: Mapping) -> dict[str, Callable[[], Any]]:
    """What loading ``config`` (the ``data`` section) reads from disk: source key -> a function
    reading it here (nothing for generated data).  Keys depend on the section only, so the
    driver of a job and its workers name a source alike."""
    values = resolve_data_config(config)
    spec = DATASETS.get(values["name"])
    return {} if spec.sources is None else spec.sources(values)


def read_source(key: str, read: Callable[[], Any]) -> Any:
    """A loader's disk read: the source shipped under ``key`` when inside :func:`preloaded`,
    else ``read()``."""
    with _SHIPPED_LOCK:
        if key in _SHIPPED:
            return _SHIPPED[key]
    return read()


def load_source(sources: Callable[[dict], dict], params: dict) -> Any:
    """The one source ``sources(params)`` names (a loader's ``DatasetSpec.sources``), shipped
    or read here."""
    [(key, read)] = sources(params).items()
    return read_source(key, read)


@contextmanager
def preloaded(sources: Mapping[str, Any]) -> Iterator[None]:
    """Inside: loaders take these sources (read by :func:`data_sources` on the job's driver)
    instead of reading the disk.  Left on exit, so a worker reused by another job never
    loads a stale copy."""
    with _SHIPPED_LOCK:
        _SHIPPED.update(sources)
    try:
        yield
    finally:
        with _SHIPPED_LOCK:
            for key in sources:
                _SHIPPED.pop(key, None)


def rngs(seed: int, n: int) -> list:
    """``n`` independent generators derived from one integer seed."""
    ss = np.random.SeedSequence(int(seed) % (1 << 64))
    return [np.random.default_rng(s) for s in ss.spawn(n)]


def user_path(value: str) -> Path:
    """The path the user named: ~ expanded, made absolute (relative to the
    working directory), symlinks resolved.  Nothing else is searched."""
    return Path(os.path.expanduser(str(value))).resolve()


# ---------------------------------------------------------------- splitting

def split_indices(y: np.ndarray | None, n: int, val: float, test: float,
                  rng: np.random.Generator, stratify: bool) -> tuple:
    """(train, val, test) index arrays.  Stratified: each class contributes
    round(n_c * fraction) to val and test and keeps at least one training
    example.  Training indices come out shuffled; val/test in shuffled order
    too, so any prefix is a fair sample."""
    if stratify:
        groups = [np.flatnonzero(y == c) for c in np.unique(y)]
    else:
        groups = [np.arange(n)]
    parts = ([], [], [])
    for idx in groups:
        idx = rng.permutation(idx)
        m = len(idx)
        n_test = int(m * test + 0.5)
        n_val = int(m * val + 0.5)
        excess = n_test + n_val - (m - 1)
        if excess > 0:  # keep one training example per group
            cut = min(excess, n_test)
            n_test -= cut
            n_val -= excess - cut
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test:n_test + n_val])
        parts[0].append(idx[n_test + n_val:])
    return tuple(rng.permutation(np.concatenate(p)).astype(np.int64) for p in parts)


# ------------------------------------------------------------ standardizing

def column_stats(x: np.ndarray, chunk: int = 8192) -> tuple:
    """(mean, std) float64 per column of a float32 (n, d) array, computed in
    chunks (float32 inside a chunk, float64 across) so 50k x 784 takes tens
    of milliseconds rather than a second."""
    n, d = x.shape
    if n == 0:
        return np.zeros(d), np.zeros(d)
    total = np.zeros(d)
    for start in range(0, n, chunk):
        block = x[start:start + chunk]
        total += np.ones(len(block), np.float32) @ block
    mean = total / n
    m32 = mean.astype(np.float32)
    sq = np.zeros(d)
    for start in range(0, n, chunk):
        block = x[start:start + chunk] - m32
        sq += np.einsum("ij,ij->j", block, block)
    return mean, np.sqrt(sq / n)


def floor_std(std: np.ndarray, mean: np.ndarray, floor: float | None) -> np.ndarray:
    """Replace (near-)zero deviations so no feature is divided by zero.

    ``floor`` given (pixels in [0, 1]): std = max(std, floor), which keeps a
    pixel that is almost always blank from turning a rare ink dot into a
    z-score of thousands.  Otherwise (tabular data with unknown units) a
    constant column gets std 1, like scikit-learn's StandardScaler."""
    std = std.copy()
    if floor is not None:
        return np.maximum(std, floor)
    tiny = std <= 1e-12 * np.maximum(1.0, np.abs(mean))
    std[tiny] = 1.0
    return std


def _frozen(a: np.ndarray, dtype) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=dtype)
    a.setflags(write=False)
    return a


def finish(name: str, task: str, splits: Mapping[str, tuple], *, standardize: bool,
           n_classes: int = 0, class_names=(), image_shape=None, feature_names=(),
           std_floor: float | None = None, stats: tuple | None = None, input_scale: float = 1.0) -> Dataset:
    """Standardize (training statistics only), cast and freeze.

    ``splits`` maps "train"/"val"/"test" to (x float32 (n, d), y); for the
    "reconstruction" task y is ignored and the targets are the inputs.
    The x arrays are taken over: float32 C-contiguous ones are standardized
    in place, so pass fresh arrays (indexing with an index array makes one).
    ``stats=(mean, std)``: the loader already standardized every split with
    these training statistics (it could do it faster); they are recorded.
    ``input_scale``: the factor the loader applied to the original units first (1/255 for pixels),
    recorded so that ``predict`` can take inputs in those units.
    """
    x_tr = np.ascontiguousarray(splits["train"][0], dtype=np.float32)
    d = x_tr.shape[1]
    if d == 0:
        raise DataError(f"{name}: the inputs have 0 feature columns (shape {x_tr.shape}); a network needs at "
                        f"least one input")
    prepared = stats is not None
    if prepared:
        mean, std = (np.asarray(s, dtype=np.float32) for s in stats)
    elif standardize:
        with np.errstate(over="ignore", invalid="ignore"):   # an overflow is refused just below, by column
            mean64, std64 = column_stats(x_tr)
        _check_stats(name, x_tr, mean64, std64, feature_names)
        std64 = floor_std(std64, mean64, std_floor)
        mean, std = mean64.astype(np.float32), std64.astype(np.float32)
    else:
        mean, std = np.zeros(d, np.float32), np.ones(d, np.float32)
    out: dict[str, Any] = {}
    for part in ("train", "val", "test"):
        x, y = splits[part]
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not x.flags.writeable:
            x = x.copy()
        if standardize and not prepared:
            x -= mean
            x /= std
            _check_standardized(name, part, x, feature_names)
        x.setflags(write=False)
        if task == "classification":
            y = _frozen(np.asarray(y).reshape(-1), np.int64)
        elif task == "reconstruction":
            y = x
        else:
            y = np.asarray(y, dtype=np.float32)
            y = _frozen(y[:, None] if y.ndim == 1 else y, np.float32)   # (n,) -> (n, 1), n = 0 included
        out["x_" + part], out["y_" + part] = x, y
    if task != "classification":
        n_classes, class_names = 0, ()
    return Dataset(name=name, task=task, n_classes=int(n_classes),
                   class_names=tuple(str(c) for c in class_names),
                   image_shape=None if image_shape is None else tuple(int(s) for s in image_shape),
                   feature_names=tuple(str(f) for f in feature_names),
                   mean=_frozen(mean, np.float32), std=_frozen(std, np.float32), input_scale=float(input_scale),
                   **out)


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _feature(j: int, feature_names) -> str:
    names = list(feature_names)
    return f"column {j + 1}" + (f" ({names[j]!r})" if j < len(names) and names[j] != f"column {j + 1}" else "")


def _check_stats(name: str, x: np.ndarray, mean: np.ndarray, std: np.ndarray, feature_names) -> None:
    """Training statistics that overflowed float32 (values near 1e38 sum past its range; values
    past 1e19 square past it) would turn every input of the column into NaN: refuse, naming it."""
    bad = np.flatnonzero(~(np.isfinite(mean) & np.isfinite(std)))
    if len(bad):
        j = int(bad[0])
        biggest = float(np.max(np.abs(x[:, j])))
        raise DataError(f"{name}, {_feature(j, feature_names)}: values up to {biggest:.3g} overflow float32 when "
                        f"standardized (the sum of the values or of their squares passes {FLOAT32_MAX:.3g}); "
                        f"rescale that column, or set data.standardize to false")


def _check_standardized(name: str, part: str, x: np.ndarray, feature_names) -> None:
    bad = np.argwhere(~np.isfinite(x))
    if len(bad):
        raise DataError(f"{name}, {_feature(int(bad[0][1]), feature_names)}: a {part} value is beyond float32's "
                        f"range once standardized; rescale that column")


def take(x: np.ndarray, y, idx: np.ndarray) -> tuple:
    return x[idx], (None if y is None else y[idx])


# ---------------------------------------------------------------- plotting

def make_grid(dataset: Dataset, n: int = 100, margin: float = 0.1) -> tuple:
    """A grid over a 2-D data set for decision-boundary plots.

    Returns ``(xs, ys, grid)``: ``xs`` and ``ys`` (n,) float32 in the
    original (unstandardized) space, spanning every split's points plus
    ``margin`` times the span on each side; ``grid`` (n*n, 2) float32 are the
    same points in the standardized space the network sees, row-major with
    ``grid[i * n + j]`` = (xs[j], ys[i]), so ``outputs.reshape(n, n)`` is an
    image whose rows go up in y.
    """
    if dataset.n_features != 2:
        raise DataError(f"make_grid needs a data set with 2 input features; "
                        f"{dataset.name!r} has {dataset.n_features}")
    if n < 2:
        raise ValueError(f"make_grid needs n >= 2, got {n}")
    pts = np.concatenate([dataset.x_train, dataset.x_val, dataset.x_test])
    pts = dataset.to_original(pts)
    lo, hi = pts.min(axis=0).astype(np.float64), pts.max(axis=0).astype(np.float64)
    span = hi - lo
    span[span <= 0] = 2.0
    centre = (lo + hi) / 2
    lo, hi = centre - span * (0.5 + margin), centre + span * (0.5 + margin)
    xs = np.linspace(lo[0], hi[0], n).astype(np.float32)
    ys = np.linspace(lo[1], hi[1], n).astype(np.float32)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    return xs, ys, dataset.standardize(grid)
