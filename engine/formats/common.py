"""What every weights format shares: the name contract, checks on loaded
tensors, and the metadata a file carries.

A Descent weights file holds one tensor per parameter, named
``layers.<i>.kernel`` (fan_in, fan_out), ``layers.<i>.bias``,
``layers.<i>.bn.gamma|beta|moving_mean|moving_variance`` and
``layers.<i>.prelu.alpha`` (hidden layers first, the output layer last), and
a metadata dictionary::

    {"format": "descent-weights", "format_version": 1,
     "app_version": "0.1.0",
     "experiment": {... the fully resolved experiment ...},
     "summary": {... final metrics, status ...},
     "data": {"task", "n_inputs", "n_outputs", "n_classes", "class_names",
              "feature_names", "image_shape", "standardize", "mean", "std", "input_scale"}}

``data.mean``/``data.std`` are the training-set statistics the network's
inputs were standardized with, after the loader multiplied the original
units by ``data.input_scale`` (1/255 for Fashion-MNIST's 0-255 pixels, 1
otherwise; absent in files written before it existed).  ``predict`` applies
both, so it takes inputs in the original units (raw pixels); the ONNX graph
and the Keras script apply the standardization only, so they take inputs
times ``input_scale`` (pixels / 255).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from engine import __version__
from engine.errors import WeightsError

FORMAT_NAME = "descent-weights"
FORMAT_VERSION = 1
NAME_RE = re.compile(r"^layers\.(\d+)\.(kernel|bias|bn\.(?:gamma|beta|moving_mean|moving_variance)|prelu\.alpha)$")
CONTRACT = ("layers.<i>.kernel, layers.<i>.bias, layers.<i>.bn.gamma|beta|moving_mean|moving_variance, "
            "layers.<i>.prelu.alpha")


def check_tensors(weights: dict, source) -> dict[str, np.ndarray]:
    """Reject anything that is not a complete, finite set of Descent tensors.

    Returns the same tensors (as arrays).  Errors name the file and the
    offending tensor, so a file of another program, a float16/int file or
    one with NaN weights is refused before anything is copied anywhere.
    """
    if not weights:
        raise WeightsError(f"{source} holds no tensors; it is not a Descent weights file")
    foreign = [name for name in weights if not NAME_RE.match(name)]
    if foreign:
        shown = ", ".join(repr(n) for n in sorted(foreign)[:5]) + (" ..." if len(foreign) > 5 else "")
        raise WeightsError(f"{source} is not a Descent weights file: {len(foreign)} tensor name(s) outside "
                           f"Descent's naming ({CONTRACT}), e.g. {shown}")
    out = {}
    layers: dict[int, dict[str, np.ndarray]] = {}
    for name, value in weights.items():
        arr = np.asarray(value)
        if arr.dtype not in (np.float32, np.float64):
            raise WeightsError(f"{source}: tensor {name!r} has dtype {arr.dtype}; Descent reads float32 or "
                               f"float64 weights")
        if not np.all(np.isfinite(arr)):
            bad = int(np.count_nonzero(~np.isfinite(arr)))
            raise WeightsError(f"{source}: tensor {name!r} holds {bad} NaN or infinite value(s); "
                               f"refusing to load it")
        m = NAME_RE.match(name)
        layers.setdefault(int(m.group(1)), {})[m.group(2)] = arr
        out[name] = arr
    for i in range(max(layers) + 1):
        parts = layers.get(i)
        if parts is None or "kernel" not in parts:
            raise WeightsError(f"{source}: layers.{i}.kernel is missing (layers are numbered from 0 without gaps)")
        kernel = parts["kernel"]
        if kernel.ndim != 2:
            raise WeightsError(f"{source}: layers.{i}.kernel has shape {kernel.shape}; a kernel is "
                               f"(fan_in, fan_out)")
        for key, arr in parts.items():
            if key != "kernel" and arr.shape != (kernel.shape[1],):
                raise WeightsError(f"{source}: layers.{i}.{key} has shape {arr.shape}, but layers.{i}.kernel "
                                   f"{kernel.shape} has {kernel.shape[1]} units")
        if i > 0 and kernel.shape[0] != layers[i - 1]["kernel"].shape[1]:
            raise WeightsError(f"{source}: layers.{i}.kernel has shape {kernel.shape}, but layers.{i - 1} "
                               f"has {layers[i - 1]['kernel'].shape[1]} units")
    return out


def n_layers(weights: dict) -> int:
    return 1 + max(int(NAME_RE.match(name).group(1)) for name in weights)


def data_info(dataset) -> dict:
    """JSON-able facts about a Dataset that a weights file needs to stand alone."""
    return {
        "name": dataset.name, "task": dataset.task, "n_inputs": int(dataset.x_train.shape[1]),
        "n_outputs": int(dataset.n_outputs), "n_classes": int(dataset.n_classes),
        "class_names": list(dataset.class_names), "feature_names": list(dataset.feature_names),
        "image_shape": None if dataset.image_shape is None else list(dataset.image_shape),
        "mean": np.asarray(dataset.mean, dtype=np.float32).tolist(),
        "std": np.asarray(dataset.std, dtype=np.float32).tolist(),
        "input_scale": float(getattr(dataset, "input_scale", 1.0)),
    }


def weights_metadata(experiment: dict | None, summary: dict | None = None, data: dict | None = None,
                     app_version: str | None = None) -> dict:
    """The metadata dictionary every Descent weights file carries."""
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
            "app_version": __version__ if app_version is None else app_version,
            "experiment": experiment, "summary": summary or {}}
    if data is not None:
        meta["data"] = data
    return meta


def suffix_of(path) -> str:
    name = Path(path).name.lower()
    for ext in (".weights.h5", ".safetensors", ".npz", ".onnx"):
        if name.endswith(ext):
            return ext
    return Path(path).suffix.lower()


# ----------------------------------------------------------------------------- metadata read back


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _names(value, field: str, counts: tuple, source) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise WeightsError(f"{source}: metadata field data.{field} must be a list of strings, got "
                           f"{type(value).__name__} {str(value)[:60]}")
    if len(value) not in counts:
        raise WeightsError(f"{source}: metadata field data.{field} has {len(value)} entries; this network needs "
                           f"{' or '.join(str(c) for c in sorted(set(counts)))}")


def _numbers(value, field: str, count: int, source, positive: bool = False) -> None:
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                              for v in value):
        raise WeightsError(f"{source}: metadata field data.{field} must be a list of {count} numbers, got "
                           f"{type(value).__name__} {str(value)[:60]}")
    if len(value) != count:
        raise WeightsError(f"{source}: metadata field data.{field} has {len(value)} numbers; the network has "
                           f"{count} inputs")
    bad = [i for i, v in enumerate(value) if not (math.isfinite(v) and abs(v) <= FLOAT32_MAX) or (positive and v <= 0)]
    if bad:
        allowed = "a positive finite float32" if positive else "a finite float32"
        raise WeightsError(f"{source}: metadata field data.{field}[{bad[0]}] is {value[bad[0]]!r}; each entry must "
                           f"be {allowed}")


def check_data_metadata(metadata: dict, source, n_inputs: int, n_classes: int) -> None:
    """Refuse a weights file whose ``data`` metadata (written by :func:`data_info`, read back by
    ``predict`` and the exporters) has a field of the wrong type or length for the network its
    tensors describe, naming the file and the field, instead of failing later on it."""
    data = metadata.get("data")
    if data is None:
        return
    if not isinstance(data, dict):
        raise WeightsError(f"{source}: metadata field data must be an object, got {type(data).__name__}")
    if data.get("task") is not None and data["task"] not in ("classification", "regression", "reconstruction"):
        raise WeightsError(f"{source}: metadata field data.task is {data['task']!r}; allowed: classification, "
                           f"regression, reconstruction")
    if data.get("class_names") is not None:
        _names(data["class_names"], "class_names", (0, n_classes), source)
    if data.get("feature_names") is not None:
        _names(data["feature_names"], "feature_names", (0, n_inputs), source)
    shape = data.get("image_shape")
    if shape is not None and (not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool)
                                                                       and s > 0 for s in shape)
                              or math.prod(shape) != n_inputs):
        raise WeightsError(f"{source}: metadata field data.image_shape is {str(shape)[:60]}; expected null or a "
                           f"list of positive integers whose product is the network's {n_inputs} inputs")
    for field, positive in (("mean", False), ("std", True)):
        if data.get(field) is not None:
            _numbers(data[field], field, n_inputs, source, positive)
    scale = data.get("input_scale")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))
                              or not (math.isfinite(scale) and scale > 0)):
        raise WeightsError(f"{source}: metadata field data.input_scale is {str(scale)[:60]}; expected a "
                           f"positive number")
    if metadata.get("summary") is not None and not isinstance(metadata["summary"], dict):
        raise WeightsError(f"{source}: metadata field summary must be an object, got "
                           f"{type(metadata['summary']).__name__}")
