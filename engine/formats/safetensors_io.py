"""safetensors files (the default format), via the ``safetensors`` package.

Header metadata must be a str -> str mapping.  Descent writes each top-level
metadata key as its own entry: strings as they are, everything else as JSON,
and lists the JSON entries under ``descent.json_keys`` so the reader knows
which to decode.  ``experiment`` (the whole resolved experiment), ``summary``
(final metrics), ``app_version``, ``format`` and ``data`` (standardization
statistics, class names) are therefore readable by any safetensors tool.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as encode_safetensors  # tensors + header -> the file's bytes

from engine.errors import WeightsError
from engine.formats.common import check_tensors
from engine.fileio import atomic_path, json_strict
from engine.limits import MEMORY_ENV, format_bytes, memory_limit, parse_json

JSON_KEYS = "descent.json_keys"
MAX_BYTES = 16 * 1024**3


def save_safetensors(path, weights: dict, metadata: dict | None = None) -> Path:
    path = Path(path)
    header: dict[str, str] = {}
    json_keys = []
    for key, value in (metadata or {}).items():
        if isinstance(value, str):
            header[key] = value
        else:
            header[key] = json.dumps(json_strict(value), allow_nan=False)   # strict JSON: null, never NaN
            json_keys.append(key)
    header[JSON_KEYS] = json.dumps(json_keys)
    blob = encode_safetensors({name: np.ascontiguousarray(value) for name, value in weights.items()},
                              metadata=header)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
    return path


def read_safetensors(path) -> tuple[dict[str, np.ndarray], dict]:
    """All tensors and the decoded metadata, without checking the names."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} is a folder, not a file" if path.is_dir()
                           else f"weights file {path} does not exist")
    if path.stat().st_size > MAX_BYTES:
        raise WeightsError(f"{path} is larger than {MAX_BYTES // 1024**3} GiB; not a Descent weights file")
    if path.stat().st_size > memory_limit():
        raise WeightsError(f"{path} holds {format_bytes(path.stat().st_size)} of tensors, more than the memory "
                           f"limit of {format_bytes(memory_limit())} ({MEMORY_ENV} changes it)")
    try:
        with safe_open(str(path), framework="numpy") as f:
            raw = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except SafetensorError as exc:
        raise WeightsError(f"{path} is not a readable safetensors file ({exc}); it may be truncated or "
                           f"written by another program") from None
    except (OSError, ValueError, TypeError) as exc:  # e.g. a dtype numpy lacks (bfloat16)
        raise WeightsError(f"{path}: cannot read its tensors ({exc})") from None
    json_keys = parse_json(raw.pop(JSON_KEYS, "[]"), f"{path}: metadata field {JSON_KEYS}", WeightsError)
    if not isinstance(json_keys, list):
        raise WeightsError(f"{path}: metadata field {JSON_KEYS} is not a list of names")
    metadata = {key: parse_json(value, f"{path}: metadata field {key}", WeightsError, allow_constants=True)
                if key in json_keys else value for key, value in raw.items()}   # NaN: files written before 0.2
    return tensors, metadata


def load_safetensors(path) -> tuple[dict[str, np.ndarray], dict]:
    tensors, metadata = read_safetensors(path)
    return check_tensors(tensors, Path(path)), metadata
