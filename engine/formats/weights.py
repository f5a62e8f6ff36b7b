"""Descent's own weights files, read and written: safetensors (the default) and NPZ.

* :func:`load_any` -- (tensors, metadata) from a ``.safetensors`` or ``.npz``
  file Descent wrote; anything else (corrupt, truncated, another program's
  file, NaN weights) raises :class:`~engine.errors.WeightsError`.
* :func:`save_weights` -- write tensors + metadata, format from the suffix.

The tensor names and the metadata are :mod:`engine.formats.common`'s
contract.  NPZ files hold the metadata in ``__metadata__``: a JSON string (a
unicode array, so ``numpy.load(..., allow_pickle=False)`` reads it) with the
resolved experiment and the run's summary.  Nothing is ever unpickled.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from engine.errors import WeightsError
from engine.fileio import atomic_path, json_strict
from engine.formats.common import check_tensors, suffix_of
from engine.formats.safetensors_io import load_safetensors, save_safetensors
from engine.limits import check_npz, parse_json

METADATA_KEY = "__metadata__"
READABLE = (".safetensors", ".npz")


def load_any(path) -> tuple[dict, dict]:
    """(tensors by name, metadata) from a Descent .safetensors or .npz file."""
    path = Path(path)
    suffix = suffix_of(path)
    if suffix == ".safetensors":
        return load_safetensors(path)
    if suffix == ".npz":
        if path.is_file():
            with open(path, "rb") as f:
                if f.read(4) != b"PK\x03\x04":  # numpy would otherwise guess "a pickle"
                    raise WeightsError(f"{path} is not a readable NPZ file (not a zip archive); it may be "
                                       f"truncated or of another kind")
        try:
            tensors, metadata = load_npz(path)
        except WeightsError:
            raise
        except Exception as exc:  # a damaged zip member, a crafted .npy header, ...
            raise WeightsError(f"{path} is not a readable NPZ file ({type(exc).__name__}: {exc})") from None
        if not isinstance(metadata, dict):
            raise WeightsError(f"{path}: its metadata is not a JSON object")
        return check_tensors(tensors, path), metadata
    if suffix in (".onnx", ".h5", ".keras"):  # other frameworks' models: engine.formats.importers
        raise WeightsError(f"{path}: {suffix} model files are not read back as weights; import the model first "
                           f"(python main.py import {path}) and use the run folder's weights.safetensors")
    if suffix == ".weights.h5":
        raise WeightsError(f"{path}: {suffix} files are written for other tools and not read back; "
                           f"import the run's weights.safetensors or weights.npz instead")
    raise WeightsError(f"{path}: unsupported weights file type {suffix or '(none)'!r}; "
                       f"use {' or '.join(READABLE)}")


def save_weights(path, weights: dict, metadata: dict | None = None) -> Path:
    """Write tensors and metadata as .safetensors or .npz (by the suffix)."""
    suffix = suffix_of(path)
    if suffix == ".safetensors":
        return save_safetensors(path, weights, metadata)
    if suffix == ".npz":
        return save_npz(path, weights, metadata)
    raise WeightsError(f"{path}: cannot save weights as {suffix or '(no suffix)'!r}; use {' or '.join(READABLE)}")


def save_npz(path, weights: dict[str, np.ndarray], metadata: dict | None = None) -> Path:
    path = Path(path)
    arrays = {name: np.ascontiguousarray(value) for name, value in weights.items()}
    arrays[METADATA_KEY] = np.array(json.dumps(json_strict(metadata or {}), allow_nan=False))   # null, never NaN
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return path


def load_npz(path) -> tuple[dict[str, np.ndarray], dict]:
    """(tensors by name, metadata) from a Descent NPZ file; clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} is a folder, not a file" if path.is_dir()
                           else f"weights file {path} does not exist")
    check_npz(path, str(path), WeightsError)   # the shapes its headers claim, before NumPy allocates them
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise WeightsError(f"{path} is not a readable NPZ file ({exc})") from None
    except ValueError as exc:  # object arrays need pickle: refused
        raise WeightsError(f"{path} holds Python objects, which are never loaded (no pickle): {exc}") from None
    meta_raw = arrays.pop(METADATA_KEY, None)
    metadata = parse_json(str(meta_raw), f"{path}: its {METADATA_KEY} entry", WeightsError,
                          allow_constants=True) if meta_raw is not None else {}   # NaN: files written before 0.2
    for name, value in arrays.items():
        if not np.issubdtype(value.dtype, np.floating):
            raise WeightsError(f"{path}: tensor {name!r} has dtype {value.dtype}, expected floats")
    return arrays, metadata
