"""Weight files: the tensor-name contract and the NPZ format.

Names: ``layers.<i>.kernel`` (fan_in, fan_out), ``layers.<i>.bias``,
``layers.<i>.bn.gamma|beta|moving_mean|moving_variance`` and
``layers.<i>.prelu.alpha``; ``i`` counts hidden layers from 0, the output
layer last.  NPZ files also hold ``__metadata__``: a JSON string (a unicode
array, so ``numpy.load(..., allow_pickle=False)`` reads it) with the
resolved experiment and the run's summary.  Nothing is ever unpickled.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from engine.errors import WeightsError
from engine.fileio import atomic_path

METADATA_KEY = "__metadata__"


def save_npz(path, weights: dict[str, np.ndarray], metadata: dict | None = None) -> Path:
    path = Path(path)
    arrays = {name: np.ascontiguousarray(value) for name, value in weights.items()}
    arrays[METADATA_KEY] = np.array(json.dumps(metadata or {}, allow_nan=True))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return path


def load_npz(path) -> tuple[dict[str, np.ndarray], dict]:
    """(tensors by name, metadata) from a Descent NPZ file; clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise WeightsError(f"{path} is not a readable NPZ file ({exc})") from None
    except ValueError as exc:  # object arrays need pickle: refused
        raise WeightsError(f"{path} holds Python objects, which are never loaded (no pickle): {exc}") from None
    meta_raw = arrays.pop(METADATA_KEY, None)
    try:
        metadata = json.loads(str(meta_raw)) if meta_raw is not None else {}
    except json.JSONDecodeError:
        raise WeightsError(f"{path}: its {METADATA_KEY} entry is not valid JSON") from None
    for name, value in arrays.items():
        if not np.issubdtype(value.dtype, np.floating):
            raise WeightsError(f"{path}: tensor {name!r} has dtype {value.dtype}, expected floats")
    return arrays, metadata


def load_weights(path) -> tuple[dict[str, np.ndarray], dict]:
    """Any weights format Descent reads, chosen by file extension."""
    path = Path(path)
    try:
        from engine.formats import load_any  # adds safetensors and checks names, shapes and finiteness
    except ImportError:
        if path.suffix == ".npz":
            return load_npz(path)
        raise WeightsError(f"{path}: unsupported weights file type {path.suffix!r}; use .npz") from None
    return load_any(path)
