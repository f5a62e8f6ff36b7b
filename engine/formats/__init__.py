"""Weights in and out: safetensors (the default), NPZ, ONNX and Keras 3 weights.

* :func:`load_any` — (tensors, metadata) from a ``.safetensors`` or ``.npz``
  file Descent wrote; anything else (corrupt, truncated, another program's
  file, NaN weights) raises :class:`~engine.errors.WeightsError`.
* :func:`save_weights` — write tensors + metadata, format from the suffix.
* :func:`export_run` — a run folder's final weights in any format.
* :func:`load_network`, :func:`network_from_weights` — a ready-to-predict
  :class:`~engine.training.network.Network` from a file.
* :func:`reuse_layers` — transfer learning: copy the first k layers into a
  new network, frozen by default.

Every write is atomic (:func:`engine.fileio.atomic_path`); nothing is ever
pickled or unpickled.
"""
from __future__ import annotations

import json
from pathlib import Path

from engine.errors import WeightsError
from engine.formats.common import check_tensors, data_info, suffix_of, weights_metadata
from engine.formats.models import load_network, network_from_weights, reuse_layers
from engine.formats.safetensors_io import load_safetensors, save_safetensors

__all__ = ["FORMATS", "DEFAULT_FORMAT", "load_any", "save_weights", "export_run", "load_network",
           "network_from_weights", "reuse_layers", "data_info", "weights_metadata", "check_tensors"]

# format name -> (file suffix, default file name in a run folder)
FORMATS = {
    "safetensors": (".safetensors", "weights.safetensors"),
    "npz": (".npz", "weights.npz"),
    "onnx": (".onnx", "model.onnx"),
    "keras": (".weights.h5", "model.weights.h5"),  # needs h5py; plus model_keras.py (build_model)
}
DEFAULT_FORMAT = "safetensors"
READABLE = (".safetensors", ".npz")


def load_any(path) -> tuple[dict, dict]:
    """(tensors by name, metadata) from a Descent .safetensors or .npz file."""
    from engine.formats.weights import load_npz

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
    from engine.formats.weights import save_npz

    suffix = suffix_of(path)
    if suffix == ".safetensors":
        return save_safetensors(path, weights, metadata)
    if suffix == ".npz":
        return save_npz(path, weights, metadata)
    raise WeightsError(f"{path}: cannot save weights as {suffix or '(no suffix)'!r}; use {' or '.join(READABLE)}")


def _run_source(run_dir: Path) -> tuple[dict, dict, Path]:
    """Tensors and metadata of a run folder (or of a weights file given directly)."""
    if run_dir.is_file():
        weights, metadata = load_any(run_dir)
        return weights, metadata, run_dir.parent
    if not run_dir.is_dir():
        raise WeightsError(f"{run_dir} is neither a run folder nor a weights file")
    for name in ("weights.safetensors", "weights.npz"):
        if (run_dir / name).is_file():
            weights, metadata = load_any(run_dir / name)
            break
    else:
        raise WeightsError(f"{run_dir} has no weights.safetensors or weights.npz; the run may still be going "
                           f"or was killed before it ended")
    for key, name in (("experiment", "experiment.json"), ("summary", "summary.json")):
        if not metadata.get(key) and (run_dir / name).is_file():
            try:
                metadata[key] = json.loads((run_dir / name).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                pass
    return weights, metadata, run_dir


def export_run(run_dir, fmt: str = DEFAULT_FORMAT, out=None, **options) -> Path:
    """Write a run's final weights as ``fmt`` ("safetensors", "npz", "onnx" or
    "keras") to ``out`` (default: the run folder's weights.safetensors /
    weights.npz / model.onnx / model.weights.h5 plus model_keras.py); returns
    the path written.  ``run_dir`` may also be a
    weights file.  ``options`` go to the ONNX writer (opset, standardize)."""
    if fmt not in FORMATS:
        raise WeightsError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    weights, metadata, folder = _run_source(Path(run_dir))
    out = Path(out) if out is not None else folder / FORMATS[fmt][1]
    if fmt in ("onnx", "keras"):
        net = network_from_weights(weights, metadata, run_dir)
        if fmt == "keras":
            from engine.formats.keras_h5 import save_keras

            return save_keras(out, net, metadata)
        from engine.formats.onnx_export import save_onnx

        return save_onnx(out, net, metadata, **options)
    metadata = dict(metadata)
    metadata.setdefault("format", "descent-weights")
    if fmt == "safetensors":
        return save_safetensors(out, weights, metadata)
    from engine.formats.weights import save_npz

    return save_npz(out, weights, metadata)
