"""Reading a run folder back: the one reader of what :class:`~engine.formats.runstore.RunWriter` writes.

The window (runs of earlier sessions), the comparison report (curves of
every variant and seed), ``export``, ``predict`` and ``run --resume`` all go
through here, so they read the same columns the writer writes (the names are
defined once, in :mod:`engine.formats.runlayout`) and meet the same errors:

* :func:`read_run_info` — the cheap part, enough to list a run: resolved
  experiment, summary, status, paths of the weights and the checkpoint;
* :func:`read_run` — all of it: the info, ``history.csv`` and ``epochs.csv``
  as NumPy columns keyed by the writer's names (per-layer columns as one
  (rows, layers) array per field), and the weights file's metadata (the
  training set's statistics, class names);
* :func:`run_weights_file`, :func:`run_checkpoint_file` — the file inside a
  folder (or the file itself) that export/predict and resume read.

A folder that cannot be read raises :class:`RunFolderError` naming the file
and what is wrong with it (missing, not JSON, a malformed CSV line), never a
traceback.  A run killed mid-write is not an error: its summary still says
"running" with a dead process id (status "interrupted"), and the line it was
writing when it died, the only one not ended by a newline, is left out.
"""
from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np

from engine.errors import DescentError
from engine.formats.runlayout import (CHECKPOINT_FILE, EPOCH_FIELDS, EPOCHS_FILE, EXPERIMENT_FILE, HISTORY_FIELDS,
                                      HISTORY_FILE, LATER_PER_LAYER_FIELDS, PER_LAYER_FIELDS, SUMMARY_FILE,
                                      WEIGHTS_FILES, per_layer_column, split_per_layer)
from engine.formats.safetensors_io import JSON_KEYS
from engine.formats.weights import METADATA_KEY
from engine.limits import check_npz, parse_json

UNFINISHED = ("running", "interrupted")   # statuses of a run whose last CSV line may be cut
MISSING_VALUES = ("", "None", "nan")      # cells read as NaN
MAX_HEADER_BYTES = 100_000_000            # a safetensors header longer than this is not Descent's


class RunFolderError(DescentError):
    """A run folder (or one of its files) cannot be read."""


# ----------------------------------------------------------------------------- the records


@dataclass(frozen=True)
class RunInfo:
    """What a listing of runs needs, read without touching the CSVs or the tensors.  The JSON
    documents are plain dicts, fresh from each read, as callers pass them on (json, deepcopy)."""
    folder: Path
    experiment: dict               # experiment.json: the resolved experiment, as written
    summary: dict                  # summary.json ({} when the run died before writing it)
    status: str                    # see read_run_status
    weights_path: Path | None      # weights.safetensors (or weights.npz); None until the run ended
    checkpoint_path: Path | None   # checkpoint.npz, when the run wrote one


@dataclass(frozen=True)
class RunFolder(RunInfo):
    """A whole run folder.  Arrays are float64 and read-only; an integer column
    such as ``step`` holds whole numbers."""
    history: Mapping[str, np.ndarray] = field(repr=False)    # HISTORY_FIELDS -> (rows,)
    per_layer: Mapping[str, np.ndarray] = field(repr=False)  # PER_LAYER_FIELDS -> (rows, layers)
    epochs: Mapping[str, np.ndarray] = field(repr=False)     # EPOCH_FIELDS -> (epochs,)
    metadata: dict = field(repr=False)                       # the weights file's ({} without weights)

    @property
    def n_layers(self) -> int:
        """Dense layers with per-layer columns (hidden layers and the output layer)."""
        return self.per_layer["grad_norm"].shape[1] if "grad_norm" in self.per_layer else 0

    @property
    def data(self) -> Mapping:
        """The data statistics the weights carry (task, class names, the training set's mean/std)."""
        return self.metadata.get("data") or {}

    def history_columns(self) -> dict[str, np.ndarray]:
        """Every column of history.csv by its header name (per-layer ones as ``grad_norm_0``...)."""
        out = dict(self.history)
        for name, table in self.per_layer.items():
            out.update((per_layer_column(name, i), table[:, i]) for i in range(table.shape[1]))
        return out

    def curve(self, column: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(steps, values) of a column: epochs.csv's (one point per epoch) if it has it, else
        history.csv's (one point per logged step); None when neither has it."""
        if column in self.epochs:
            return self.epochs["step"], self.epochs[column]
        history = self.history_columns()
        if column in history:
            return self.history["step"], history[column]
        return None


# ----------------------------------------------------------------------------- reading


def read_run_status(folder: str | os.PathLike) -> str:
    """"finished", "stopped", "diverged", "early_stopped", "interrupted" or "running"
    ("interrupted" also when summary.json is missing or unreadable)."""
    try:
        return _status(_json_object(Path(folder) / SUMMARY_FILE))
    except RunFolderError:
        return "interrupted"


def read_run_info(folder: str | os.PathLike) -> RunInfo:
    """Experiment, summary, status and file paths of a run folder (no CSV is read)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RunFolderError(f"{folder} is not a run folder: " + ("it is a file" if folder.exists()
                                                                   else "it does not exist"))
    experiment_path = folder / EXPERIMENT_FILE
    if not experiment_path.is_file():
        raise RunFolderError(f"{folder} is not a run folder: it has no {EXPERIMENT_FILE}{_kind_hint(folder)}")
    experiment = _json_object(experiment_path)
    summary_path = folder / SUMMARY_FILE
    summary = _json_object(summary_path) if summary_path.exists() else {}
    weights = next((folder / name for name in WEIGHTS_FILES if (folder / name).is_file()), None)
    checkpoint = folder / CHECKPOINT_FILE
    return RunInfo(folder, experiment, summary, _status(summary), weights, checkpoint if checkpoint.is_file() else None)


def read_run(folder: str | os.PathLike) -> RunFolder:
    """Everything in a run folder (see the module docstring)."""
    info = read_run_info(folder)
    cut_ok = info.status in UNFINISHED
    history = _read_table(info.folder / HISTORY_FILE, HISTORY_FIELDS, cut_ok, info.folder)
    epochs = _read_table(info.folder / EPOCHS_FILE, EPOCH_FIELDS, cut_ok, info.folder)
    scalars, per_layer = _split_history(info.folder / HISTORY_FILE, history)
    metadata = _weights_metadata(info.weights_path) if info.weights_path is not None else {}
    return RunFolder(**vars(info), history=MappingProxyType(scalars), per_layer=MappingProxyType(per_layer),
                     epochs=MappingProxyType(epochs), metadata=metadata)


def run_weights_file(path: str | os.PathLike) -> Path:
    """The weights file export and predict read: ``path`` itself when it is a file, else the
    run folder's weights.safetensors (or weights.npz)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise RunFolderError(f"{path} is neither a run folder nor a weights file")
    info = read_run_info(path)
    if info.weights_path is None:
        raise RunFolderError(f"{path} has no {' or '.join(WEIGHTS_FILES)}; the run may still be going "
                             f"or was killed before it ended")
    return info.weights_path


def run_checkpoint_file(path: str | os.PathLike) -> Path:
    """The checkpoint ``run --resume`` reads: ``path`` itself when it is a file, else the run folder's."""
    path = Path(path)
    if path.is_dir():
        info = read_run_info(path)
        if info.checkpoint_path is None:
            raise RunFolderError(f"{path} has no {CHECKPOINT_FILE}: only runs that ended (finished or stopped, "
                                 f"Ctrl-C included) with checkpoints on can be resumed")
        return info.checkpoint_path
    if not path.is_file():
        raise RunFolderError(f"{path} is neither a run folder nor a checkpoint file")
    return path


# ----------------------------------------------------------------------------- helpers


def _status(summary: Mapping) -> str:
    status = summary.get("status", "interrupted")
    if status != "running":
        return status
    pid = summary.get("pid")
    if isinstance(pid, int) and pid > 0:
        try:
            os.kill(pid, 0)
            return "running"
        except OSError:
            pass
    return "interrupted"


def _json_object(path: Path) -> dict:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise RunFolderError(f"{path} is missing") from None
    except OSError as exc:
        raise RunFolderError(f"cannot read {path}: {exc}") from None
    value = parse_json(text, str(path), RunFolderError, allow_constants=True)   # NaN: written before 0.2
    if not isinstance(value, dict):
        raise RunFolderError(f"{path} holds a JSON {type(value).__name__}, not an object")
    if path.name == SUMMARY_FILE:   # null is how a missing (NaN) figure is written: read it as NaN
        value = {k: math.nan if v is None else v for k, v in value.items()}
    return value


def _kind_hint(folder: Path) -> str:
    """Why a folder that is not a run folder might have been given."""
    if (folder / "comparison.json").is_file():
        return "; it is a comparison folder: each <variant>-seed<s> folder inside it is a run folder"
    if any(folder.glob("seed-*/*/")):
        return "; it is a staged run's folder: its runs are the seed-<s>/<stage>/ folders inside it"
    return ""


def _read_table(path: Path, required: tuple, cut_ok: bool, folder: Path) -> dict[str, np.ndarray]:
    """{column: values} of one CSV the writer appends to.  ``cut_ok``: the run did not end, so
    a last line without its newline is the row being written when it died (left out)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunFolderError(f"{path} is missing{_kind_hint(folder)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFolderError(f"cannot read {path}: {exc}") from None
    lines = text.split("\n")
    last = lines.pop()                  # "" when the file ends with a newline, as the writer leaves it
    if last and not cut_ok:
        lines.append(last)
    lines = [line.rstrip("\r") for line in lines]
    if not lines or not lines[0]:
        raise RunFolderError(f"{path} is empty: no header line")
    header = lines[0].split(",")
    repeated = sorted({h for h in header if header.count(h) > 1})
    missing = [name for name in required if name not in header]
    if repeated or missing:
        what = f"repeats column(s) {', '.join(repeated)}" if repeated else f"has no column(s) {', '.join(missing)}"
        raise RunFolderError(f"{path} {what}; it is not a run's {path.name} as Descent writes it")
    values = _parse_rows(path, header, lines[1:])
    columns = {}
    for j, name in enumerate(header):
        column = values[:, j].copy()
        column.setflags(write=False)
        columns[name] = column
    return columns


def _parse_rows(path: Path, header: list, rows: list) -> np.ndarray:
    if not rows:
        return np.zeros((0, len(header)))
    try:   # the fast path, for every file the writer wrote; the loop below says what is wrong otherwise
        values = np.loadtxt(rows, delimiter=",", dtype=np.float64, comments=None, ndmin=2)
        if values.shape == (len(rows), len(header)):
            return values
    except ValueError:
        pass
    values = np.empty((len(rows), len(header)))
    for i, row in enumerate(rows):
        cells = row.split(",")
        if len(cells) != len(header):
            raise RunFolderError(f"{path}, line {i + 2}: {len(cells)} values for {len(header)} columns")
        for j, cell in enumerate(cells):
            cell = cell.strip()
            try:
                values[i, j] = math.nan if cell in MISSING_VALUES else float(cell)
            except ValueError:
                raise RunFolderError(f"{path}, line {i + 2}, column {header[j]}: {cell!r} is not a number") from None
    return values


def _split_history(path: Path, columns: dict) -> tuple[dict, dict]:
    """history.csv's columns as scalars and (rows, layers) tables of the per-layer fields."""
    scalars, layers = {}, {}
    for name, values in columns.items():
        split = split_per_layer(name)
        if split is None:
            scalars[name] = values
        else:
            layers.setdefault(split[0], {})[split[1]] = values
    n = len(layers.get("grad_norm", ()))
    per_layer = {}
    for name in PER_LAYER_FIELDS:
        found = layers.get(name, {})
        if not found and name in LATER_PER_LAYER_FIELDS:   # a run written before the field existed
            found = {i: np.full(len(columns["step"]), np.nan) for i in range(n)}
        if sorted(found) != list(range(n)):
            raise RunFolderError(f"{path}: per-layer columns {name}_<i> are for layers {sorted(found)}, expected "
                                 f"0 to {n - 1} like grad_norm_<i>")
        table = np.column_stack([found[i] for i in range(n)]) if n else np.zeros((len(columns["step"]), 0))
        table.setflags(write=False)
        per_layer[name] = table
    return scalars, per_layer


def _weights_metadata(path: Path) -> dict:
    """The metadata of a weights file, read from its header alone (not the tensors)."""
    try:
        if path.suffix == ".npz":
            check_npz(path, str(path), RunFolderError)   # the metadata member's claimed size, before loading it
            with np.load(path, allow_pickle=False) as z:
                raw = str(z[METADATA_KEY]) if METADATA_KEY in z.files else "{}"
            return _metadata_object(path, parse_json(raw, f"{path}: metadata", RunFolderError, allow_constants=True))
        with open(path, "rb") as f:   # safetensors: an 8-byte little-endian length, then the JSON header
            size = struct.unpack("<Q", f.read(8))[0]
            header = f.read(size) if size < MAX_HEADER_BYTES else None
    except (OSError, ValueError, EOFError, struct.error) as exc:
        raise RunFolderError(f"cannot read the metadata of {path} ({type(exc).__name__}: {exc})") from None
    header = None if header is None else parse_json(header, f"{path}: header", RunFolderError, allow_constants=True)
    if not isinstance(header, dict):
        raise RunFolderError(f"{path} has no safetensors header")
    raw = header.get("__metadata__") or {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise RunFolderError(f"{path}: its header's __metadata__ is not a mapping of strings")
    json_keys = parse_json(raw.pop(JSON_KEYS, "[]"), f"{path}: metadata field {JSON_KEYS}", RunFolderError)
    if not isinstance(json_keys, list):
        raise RunFolderError(f"{path}: metadata field {JSON_KEYS} is not a list of names")
    return _metadata_object(path, {k: parse_json(v, f"{path}: metadata field {k}", RunFolderError,
                                                 allow_constants=True) if k in json_keys else v
                                   for k, v in raw.items()})


def _metadata_object(path: Path, value) -> dict:
    if not isinstance(value, dict):
        raise RunFolderError(f"{path}: its metadata is not a JSON object")
    return value
