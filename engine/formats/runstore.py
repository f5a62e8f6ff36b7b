"""Run folders: everything a run produces, written as it happens.

Layout of ``runs/<timestamp>-<name>/``:

* ``experiment.json`` — the resolved experiment (written first);
* ``history.csv`` — one row per logged step (appended and flushed as it goes);
* ``epochs.csv`` — one row per epoch (appended and flushed);
* ``summary.json`` — status "running" until the end, then final metrics;
  a folder still saying "running" with no live process was interrupted;
* ``weights.npz`` and ``weights.safetensors`` — final weights (also on stop
  and divergence: the last finite ones) with the experiment, summary and
  data statistics as metadata (see :mod:`engine.formats`);
* ``checkpoint.npz`` — optimizer and RNG state for ``run --resume``, when a
  trainer is attached (:meth:`RunWriter.attach`).

Metrics are appended line by line, so a killed process leaves valid CSV
files; JSON and weights are replaced atomically.  File and column names are
defined once, in :mod:`engine.formats.runlayout`; the one reader of a run
folder is :func:`engine.formats.runfolder.read_run`.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

from engine.events import EpochEnd, RunFinished, RunStarted, StepMetrics
from engine.fileio import ensure_dir, write_json, write_text
from engine.formats.checkpoint import CHECKPOINT_NAME, save_checkpoint
from engine.formats.common import data_info, weights_metadata
from engine.formats.weights import save_npz, save_weights
from engine.spec.experiment import dumps_experiment
from engine.formats.runlayout import (EPOCH_FIELDS, EPOCHS_FILE, EXPERIMENT_FILE, HISTORY_FIELDS, HISTORY_FILE,
                                      PER_LAYER_FIELDS, SUMMARY_FILE, WEIGHTS_NPZ, WEIGHTS_SAFETENSORS,
                                      history_header)
from engine.formats.runfolder import read_run_status  # noqa: F401  (re-exported: where callers look for it)


def safe_name(name: str) -> str:
    """``name`` as it appears in a run folder's name (letters, digits, - and _; at most 60)."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:60] or "run"


def folder_experiment_name(folder: str | os.PathLike) -> str:
    """The name part of a ``<yyyymmdd>-<hhmmss>-<name>`` folder made by :func:`default_run_dir`."""
    return Path(folder).name.split("-", 2)[-1]


def default_run_dir(name: str, root: str | os.PathLike = "runs") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = safe_name(name)
    path = Path(root) / f"{stamp}-{safe}"
    n = 1
    while path.exists():
        n += 1
        path = Path(root) / f"{stamp}-{safe}-{n}"
    return path


def _fmt(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return str(value)


class RunWriter:
    """Consumes a run's events and writes its folder incrementally."""

    def __init__(self, folder: str | os.PathLike, app_version: str = ""):
        self.folder = ensure_dir(Path(folder))
        self.app_version = app_version
        self._history = None
        self._epochs = None
        self.experiment: dict | None = None
        self.summary: dict | None = None
        self.trainer = None
        self.data = None     # data_info for the weights when no trainer is attached (a stage's phases)
        self.write_checkpoint = False

    def attach(self, trainer, checkpoint: bool = True) -> None:
        """Let the writer record the trainer's data statistics with the
        weights and, with ``checkpoint``, its resumable state at the end."""
        self.trainer = trainer
        self.write_checkpoint = checkpoint

    def handle(self, event) -> None:
        if isinstance(event, RunStarted):
            self._start(event)
        elif isinstance(event, StepMetrics):
            self._row(self._history, [getattr(event, f) for f in HISTORY_FIELDS]
                      + [float(getattr(event, f)[i]) for i in range(len(event.grad_norm)) for f in PER_LAYER_FIELDS])
        elif isinstance(event, EpochEnd):
            self._row(self._epochs, [getattr(event, f) for f in EPOCH_FIELDS])
        elif isinstance(event, RunFinished):
            self._finish(event)

    def _start(self, event: RunStarted) -> None:
        self.experiment = event.experiment
        write_text(self.folder / EXPERIMENT_FILE, dumps_experiment(event.experiment))
        write_json(self.folder / SUMMARY_FILE, {"status": "running", "pid": os.getpid(),
                                                "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
        self._history = self._open(HISTORY_FILE, history_header(len(event.layers)))
        self._epochs = self._open(EPOCHS_FILE, list(EPOCH_FIELDS))

    def _open(self, name: str, header: list[str]):
        f = open(self.folder / name, "w", newline="", encoding="utf-8")
        f.write(",".join(header) + "\n")
        f.flush()
        return f

    @staticmethod
    def _row(f, values) -> None:
        if f is None:
            return
        f.write(",".join(_fmt(v) for v in values) + "\n")
        f.flush()

    def _finish(self, event: RunFinished) -> None:
        self.close()
        summary = dict(event.summary, status=event.status, reason=event.reason)
        self.summary = summary
        data = data_info(self.trainer.data) if self.trainer is not None else self.data
        meta = weights_metadata(self.experiment, summary, data, self.app_version or None)
        save_npz(self.folder / WEIGHTS_NPZ, dict(event.weights), meta)
        save_weights(self.folder / WEIGHTS_SAFETENSORS, dict(event.weights), meta)
        if self.trainer is not None and self.write_checkpoint:
            save_checkpoint(self.folder / CHECKPOINT_NAME, self.trainer.checkpoint(), self.experiment,
                            event.status, self.app_version or None)
        write_json(self.folder / SUMMARY_FILE, summary)

    def close(self) -> None:
        for f in (self._history, self._epochs):
            if f is not None and not f.closed:
                f.close()
