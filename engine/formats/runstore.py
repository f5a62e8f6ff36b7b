"""Run folders: everything a run produces, written as it happens.

Layout of ``runs/<timestamp>-<name>/``:

* ``experiment.json`` — the resolved experiment (written first);
* ``history.csv`` — one row per logged step (appended and flushed as it goes);
* ``epochs.csv`` — one row per epoch (appended and flushed);
* ``summary.json`` — status "running" until the end, then final metrics
  (strict JSON: a missing figure is ``null``); a folder still saying
  "running" with no live process was interrupted; "failed" when a write
  failed (a full disk), with the reason;
* ``weights.safetensors`` — final weights (also on stop and divergence: the
  last finite ones) with the experiment, summary and data statistics as
  metadata (see :mod:`engine.formats`); ``weights.npz`` instead of it or
  beside it when asked (``run --weights-format npz|both``);
* ``checkpoint.npz`` — optimizer and RNG state for ``run --resume``, when a
  trainer is attached (:meth:`RunWriter.attach`): at the end and every few
  minutes on the way (a killed run resumes from the last one).

Metrics are appended line by line (:class:`~engine.fileio.LineFile`), so a
killed process or a full disk leaves valid CSV files; JSON and weights are
replaced atomically; nothing is written through a symbolic link.  File and column names are
defined once, in :mod:`engine.formats.runlayout`; the one reader of a run
folder is :func:`engine.formats.runfolder.read_run`.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Iterator

from engine.events import EpochEnd, RunFinished, RunStarted, StepMetrics, WritingFiles
from engine.fileio import (DiskFullError, LineFile, WriteError, ensure_dir, json_strict, overwrite_in_place,
                           write_json, write_text)
from engine.formats.checkpoint import CHECKPOINT_NAME, save_checkpoint
from engine.formats.common import data_info, weights_metadata
from engine.formats.weights import save_weights
from engine.spec.experiment import dumps_experiment
from engine.formats.runlayout import (DEFAULT_WEIGHTS_FILES, EPOCH_FIELDS, EPOCHS_FILE, EXPERIMENT_FILE,
                                      HISTORY_FIELDS, HISTORY_FILE, OUTPUT_FILES, PER_LAYER_FIELDS, STOP_FILE,
                                      SUMMARY_FILE, history_header)
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


def prepare_out_folder(folder: str | os.PathLike | None, overwrite: bool = False,
                       continuing: str | os.PathLike | None = None) -> None:
    """Make sure a job writing ``folder`` cannot mix with what is already there, before anything is
    written.  A missing or empty folder is fine, and so is the folder of the run being resumed
    (``continuing``: a resumed run continues its own folder).  Any other folder with something in
    it is refused, unless ``overwrite``: then what Descent wrote there (the files of
    :data:`~engine.formats.runlayout.OUTPUT_FILES`, left-over temporary files, and sub-folders that
    hold only such files: the runs of a comparison or of a staged run) is deleted first, so no
    other experiment's ``checkpoint.npz`` or run folder is left behind; other files stay."""
    if folder is None:
        return
    folder = Path(folder)
    if folder.is_symlink():
        raise WriteError(f"--out {folder} is a symbolic link; Descent never writes through a link (give the "
                         f"folder it points to)")
    if not folder.exists():
        return
    if not folder.is_dir():
        raise WriteError(f"--out {folder} is a file, not a folder")
    if continuing is not None and Path(continuing).resolve() == folder.resolve():
        return
    entries = sorted(p.name for p in folder.iterdir())
    if not entries:
        return
    if not overwrite:
        shown = ", ".join(entries[:5]) + (" ..." if len(entries) > 5 else "")
        raise WriteError(f"--out {folder} already holds {shown}; two runs never share a folder: choose a new "
                         f"one, or add --overwrite to delete what Descent wrote there first")
    _clear_output(folder)


def discard_if_empty(folder: str | os.PathLike | None) -> None:
    """Remove a job's folder that holds nothing but its stop file (a job that failed before any run
    wrote a thing), so an input error leaves nothing behind."""
    if folder is None or not Path(folder).is_dir() or Path(folder).is_symlink():
        return
    folder = Path(folder)
    if {p.name for p in folder.iterdir()} <= {STOP_FILE}:
        (folder / STOP_FILE).unlink(missing_ok=True)
        folder.rmdir()


def _clear_output(folder: Path) -> bool:
    """Delete Descent's files in ``folder`` and in its sub-folders (a link is removed, never
    followed); a sub-folder emptied that way goes too.  True when something was deleted."""
    deleted = False
    for entry in folder.iterdir():
        name = entry.name
        if entry.is_symlink() or entry.is_file():
            if name in OUTPUT_FILES or (name.startswith(".") and name.endswith(".tmp")):
                entry.unlink()
                deleted = True
        elif entry.is_dir() and _clear_output(entry):
            deleted = True
            if not any(entry.iterdir()):
                entry.rmdir()
    return deleted


def _fmt(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return str(value)


class RunWriter:
    """Consumes a run's events and writes its folder incrementally.

    ``continue_at``: the run resumes a checkpoint taken at this step *in this same folder*; the
    CSV rows up to that step are kept and the new ones appended after them (rows a killed run
    wrote after its last checkpoint are dropped: the resumed run writes them again).  A write
    that fails (full disk, a planted symbolic link) raises :class:`~engine.fileio.WriteError`;
    :meth:`fail` then records the run as failed, keeping every complete row."""

    def __init__(self, folder: str | os.PathLike, app_version: str = "", continue_at: int | None = None,
                 weights_files: tuple = DEFAULT_WEIGHTS_FILES):
        self.folder = ensure_dir(Path(folder))
        self.weights_files = weights_files   # which copies of the final weights to write (runlayout.WEIGHTS_FORMATS)
        self.app_version = app_version
        self.continue_at = continue_at
        self._history = None
        self._epochs = None
        self.experiment: dict | None = None
        self.summary: dict | None = None
        self.trainer = None
        self.data = None     # data_info for the weights when no trainer is attached (a stage's phases)
        self.write_checkpoint = False
        self.checkpoint_seconds: float | None = None
        self._last_checkpoint = 0.0
        self.last_step = 0

    def attach(self, trainer, checkpoint: bool = True, every_minutes: float | None = None) -> None:
        """Let the writer record the trainer's data statistics with the weights and, with
        ``checkpoint``, its resumable state at the end and, with ``every_minutes``, at the first
        diagnostics record after each such interval (so a killed run can resume from there)."""
        self.trainer = trainer
        self.write_checkpoint = checkpoint
        self.checkpoint_seconds = every_minutes * 60 if checkpoint and every_minutes else None
        self._last_checkpoint = time.monotonic()

    def handle(self, event) -> None:
        if isinstance(event, RunStarted):
            self._start(event)
        elif isinstance(event, StepMetrics):
            self.last_step = event.step
            per_layer = zip(*[getattr(event, f).tolist() for f in PER_LAYER_FIELDS])   # layer by layer
            self._row(self._history, [getattr(event, f) for f in HISTORY_FIELDS] + [v for row in per_layer for v in row])
            self._periodic_checkpoint()
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

    def _open(self, name: str, header: list[str]) -> LineFile:
        line = ",".join(header) + "\n"
        steps_per_epoch = None if self.trainer is None or name != EPOCHS_FILE else self.trainer.steps_per_epoch
        keep = None if self.continue_at is None else kept_rows(self.folder / name, line, self.continue_at,
                                                                steps_per_epoch)
        f = LineFile(self.folder / name, keep)
        if keep is None:
            f.write(line)
        return f

    @staticmethod
    def _row(f, values) -> None:
        if f is None:
            return
        # a Python float's repr is what _fmt writes (NaN included), without the call per cell
        f.write(",".join([repr(v) if type(v) is float else _fmt(v) for v in values]) + "\n")

    def _periodic_checkpoint(self) -> None:
        if self.checkpoint_seconds is None or time.monotonic() - self._last_checkpoint < self.checkpoint_seconds:
            return
        state = self.trainer.checkpoint_in_epoch()
        if state is not None:   # None on the last batch of an epoch or of the run: its end work is to come
            save_checkpoint(self.folder / CHECKPOINT_NAME, state, self.experiment, "running",
                            self.app_version or None)
            self._last_checkpoint = time.monotonic()

    def _finish(self, event: RunFinished) -> None:
        for _ in self.finish_steps(event):
            pass

    def finish_steps(self, event: RunFinished) -> Iterator[WritingFiles]:
        """The end of a run written file by file: a :class:`~engine.events.WritingFiles` before each
        of the final files (the weights copies, the checkpoint), then ``summary.json`` with the final
        status.  An 88-million-parameter net writes hundreds of megabytes here, seconds of disk
        time: its consumers show the run's end at once and the writing as it goes."""
        self.close()
        summary = dict(event.summary, status=event.status, reason=event.reason)
        self.summary = summary
        data = data_info(self.trainer.data) if self.trainer is not None else self.data
        meta = weights_metadata(self.experiment, summary, data, self.app_version or None)
        weights = dict(event.weights)
        size = sum(int(v.nbytes) for v in weights.values())
        writes = [(name, size, lambda name=name: save_weights(self.folder / name, weights, meta))   # by suffix
                  for name in self.weights_files]
        if self.trainer is not None and self.write_checkpoint:   # the weights again and the optimizer's slots
            trainer = self.trainer
            writes.append((CHECKPOINT_NAME, size * (1 + len(trainer.opt_state.slots)),
                           lambda: save_checkpoint(self.folder / CHECKPOINT_NAME, trainer.checkpoint(),
                                                   self.experiment, event.status, self.app_version or None)))
        files = tuple((name, size) for name, size, _ in writes)
        for index, (_, _, write) in enumerate(writes):
            yield WritingFiles(event.run_id, event.status, event.step, str(self.folder), files, index)
            write()
        write_json(self.folder / SUMMARY_FILE, summary)

    def fail(self, error: Exception) -> None:
        """The run ended on ``error`` (a write that failed): close the CSVs (every complete row stays)
        and, if the disk lets it, say so in summary.json: status "failed", the reason, the last step."""
        self.close()
        reason = str(error)
        self.summary = {"status": "failed", "reason": reason, "steps": self.last_step}
        try:
            write_json(self.folder / SUMMARY_FILE, self.summary)
        except DiskFullError:   # no room for a second copy: rewrite the old one in the blocks it has
            try:
                overwrite_in_place(self.folder / SUMMARY_FILE, json.dumps(json_strict(self.summary)) + "\n")
            except WriteError:
                pass   # not even that: the summary stays "running" (read as interrupted)
        except WriteError:
            pass

    def close(self) -> None:
        for f in (self._history, self._epochs):
            if f is not None and not f.closed:
                f.close()


def kept_rows(path: Path, header_line: str, last_step: int, steps_per_epoch: int | None = None) -> int | None:
    """Bytes of ``path`` to keep when a run resumes at ``last_step`` in its own folder: the header
    and the complete rows up to ``last_step`` (None: start the file afresh, it is missing, a
    link, or another header).  ``steps_per_epoch`` (epochs.csv): only rows of whole epochs are
    kept; a step limit's row for a partial epoch is written again, whole, by the resumed run."""
    if path.is_symlink() or not path.is_file():
        return None
    with open(path, "rb") as f:
        data = f.read()
    header = header_line.encode("utf-8")
    if not data.startswith(header):
        return None
    names = header_line.rstrip("\n").split(",")
    column, epoch = names.index("step"), names.index("epoch")
    keep = len(header)
    for line in data[len(header):].split(b"\n")[:-1]:   # the last piece: "" or a line cut by a kill
        cells = line.split(b",")
        try:
            step = float(cells[column])
            if step > last_step or (steps_per_epoch is not None and step != float(cells[epoch]) * steps_per_epoch):
                break
        except (ValueError, IndexError):
            break
        keep += len(line) + 1
    return keep
