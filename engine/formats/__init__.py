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

from pathlib import Path

from engine.errors import WeightsError
from engine.formats.common import check_tensors, data_info, weights_metadata
from engine.formats.keras_h5 import save_keras
from engine.formats.models import load_network, network_from_weights, reuse_layers
from engine.formats.onnx_export import save_onnx
from engine.formats.runfolder import read_run_info, run_weights_file
from engine.formats.safetensors_io import save_safetensors
from engine.formats.weights import load_any, save_npz, save_weights

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


def _run_source(run_dir: Path) -> tuple[dict, dict, Path]:
    """Tensors and metadata of a run folder (or of a weights file given directly), the run
    folder read by :mod:`engine.formats.runfolder`, the one reader of run folders."""
    weights, metadata = load_any(run_weights_file(run_dir))
    if not run_dir.is_dir():
        return weights, metadata, run_dir.parent
    info = read_run_info(run_dir)
    for key in ("experiment", "summary"):   # weights written before their metadata carried these
        if not metadata.get(key) and getattr(info, key):
            metadata[key] = getattr(info, key)
    return weights, metadata, run_dir


def format_of(path) -> str | None:
    """The export format a file name's suffix names (``model.weights.h5`` -> keras), or None."""
    name = Path(path).name.lower()
    return next((fmt for fmt, (suffix, _) in sorted(FORMATS.items(), key=lambda kv: -len(kv[1][0]))
                 if name.endswith(suffix)), None)


def export_format(fmt: str | None, out=None) -> str:
    """The format to write: ``fmt`` if given, else the one ``out``'s suffix names, else the default.
    A format and a file name that disagree (NPZ bytes under ``x.safetensors``, which nothing could
    read back) are refused, naming both."""
    if fmt is not None and fmt not in FORMATS:
        raise WeightsError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    named = None if out is None else format_of(out)
    if out is not None and named is None:
        raise WeightsError(f"--out {out}: the file name must end with the format's suffix "
                           f"({', '.join(s for s, _ in FORMATS.values())})"
                           + (f"; for {fmt}: {FORMATS[fmt][0]}" if fmt else ""))
    if fmt is not None and named is not None and named != fmt:
        raise WeightsError(f"--format {fmt} but --out {out} names a {named} file; make them agree (or leave "
                           f"--format out to take it from the suffix)")
    return fmt or named or DEFAULT_FORMAT


def export_run(run_dir, fmt: str | None = DEFAULT_FORMAT, out=None, **options) -> Path:
    """Write a run's final weights as ``fmt`` ("safetensors", "npz", "onnx" or
    "keras"; None: the one ``out``'s suffix names) to ``out`` (default: the run folder's
    weights.safetensors / weights.npz / model.onnx / model.weights.h5 plus model_keras.py);
    returns the path written.  ``run_dir`` may also be a
    weights file.  ``options`` go to the ONNX writer (opset, standardize)."""
    fmt = export_format(fmt, out)
    weights, metadata, folder = _run_source(Path(run_dir))
    out = Path(out) if out is not None else folder / FORMATS[fmt][1]
    if fmt in ("onnx", "keras"):
        net = network_from_weights(weights, metadata, run_dir)
        if fmt == "keras":
            return save_keras(out, net, metadata)
        return save_onnx(out, net, metadata, **options)
    metadata = dict(metadata)
    metadata.setdefault("format", "descent-weights")
    if fmt == "safetensors":
        return save_safetensors(out, weights, metadata)
    return save_npz(out, weights, metadata)
