"""Export: weights, plots as PNG, curves as CSV.

Weights go through the engine's formats (:mod:`engine.formats`: safetensors,
NPZ, ONNX, Keras); ``export_weights`` is the one function to extend, and
``WEIGHT_FORMATS`` (built from ``engine.formats.FORMATS``) is what the File
menu offers.  Without the formats package it falls back to NPZ.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from engine.formats.runlayout import WEIGHTS_FILES
from engine.formats.weights import save_npz

from .records import EPOCH_KEYS, PER_LAYER, RunRecord

FORMAT_LABELS = {"safetensors": "safetensors (*.safetensors)", "npz": "NumPy archive (*.npz)",
                 "onnx": "ONNX model (*.onnx)", "keras": "Keras 3 weights (*.weights.h5)"}

try:
    from engine.formats import FORMATS as _ENGINE_FORMATS
except ImportError:  # the formats issue not merged: NPZ only
    _ENGINE_FORMATS = {"npz": (".npz", "weights.npz")}

# format name -> (suffix, file dialog filter)
WEIGHT_FORMATS = {name: (suffix, FORMAT_LABELS.get(name, f"{name} (*{suffix})"))
                  for name, (suffix, _default) in _ENGINE_FORMATS.items()}


def weight_file_filter() -> str:
    return ";;".join(label for _suffix, label in WEIGHT_FORMATS.values())


def format_of(path: Path) -> str | None:
    name = path.name.lower()
    for fmt, (suffix, _label) in sorted(WEIGHT_FORMATS.items(), key=lambda kv: -len(kv[1][0])):
        if name.endswith(suffix):
            return fmt
    return None


def export_weights(path, record: RunRecord) -> Path:
    """Write ``record``'s final weights to ``path`` in the format its suffix names
    (NPZ when it names none).  Run folders go through ``engine.formats.export_run``
    (all formats, with the run's metadata); weights only in memory through
    ``save_npz`` / ``save_weights``."""
    path = Path(path)
    fmt = format_of(path)
    if fmt is None:
        fmt, path = "npz", path.with_name(path.name + ".npz")
    folder = record.folder
    if folder is not None and any((folder / n).is_file() for n in WEIGHTS_FILES):   # either, or both
        from engine.formats import export_run

        return export_run(folder, fmt, path)
    if record.weights is None:
        raise ValueError(f"run {record.name} has no weights (it has not finished)")
    metadata = {"experiment": record.experiment, "summary": record.summary or {}}
    if fmt == "npz":
        return save_npz(path, dict(record.weights), metadata)
    from engine.formats import save_weights

    return save_weights(path, dict(record.weights), metadata)


def has_weights(record: RunRecord | None) -> bool:
    if record is None:
        return False
    if record.weights is not None:
        return True
    return record.folder is not None and any((record.folder / n).is_file() for n in WEIGHTS_FILES)


def export_plots_png(widget, path) -> Path:
    """A picture of ``widget`` (the plot grid) as it is on screen."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_name(path.name + ".png")
    if not widget.grab().save(str(path), "PNG"):
        raise OSError(f"could not write {path}")
    return path


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return "nan" if math.isnan(v) else repr(float(v))
    return str(v)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:60] or "run"


def export_curves_csv(records: list[RunRecord], path) -> list[Path]:
    """Per run, ``<stem>-steps.csv`` (every logged step: loss, learning rate and
    each per-layer diagnostic) and ``<stem>-epochs.csv``; with several runs the
    run name goes into the file names."""
    path = Path(path)
    stem = path.with_suffix("")
    written = []
    for r in records:
        base = f"{stem}-{_safe(r.name)}" if len(records) > 1 else str(stem)
        steps = r.log_step.data
        n_layers = r.per_layer["grad_norm"].width
        loss_at = np.full(len(steps), np.nan)
        if len(r.loss_step):
            idx = np.searchsorted(r.loss_step.data, steps)
            ok = idx < len(r.loss_step)
            loss_at[ok] = r.loss.data[idx[ok]]
        p = Path(f"{base}-steps.csv")
        with open(p, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["step", "epoch", "loss", "learning_rate"] +
                       [f"{k}_{i}" for i in range(n_layers) for k in PER_LAYER])
            for j, step in enumerate(steps):
                row = [int(step), _fmt(r.log_epoch.data[j]), _fmt(loss_at[j]), _fmt(r.lr.data[j])]
                row += [_fmt(r.per_layer[k].data[j, i]) for i in range(n_layers) for k in PER_LAYER]
                w.writerow(row)
        written.append(p)
        p = Path(f"{base}-epochs.csv")
        with open(p, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(list(EPOCH_KEYS))
            for j in range(len(r.epochs["epoch"])):
                w.writerow([_fmt(r.epochs[k].data[j]) for k in EPOCH_KEYS])
        written.append(p)
    return written
