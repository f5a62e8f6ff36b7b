"""What the window keeps of each run: growing buffers filled from engine events.

A :class:`RunRecord` lives on the GUI thread.  The worker's batches of
immutable events are appended to it (:meth:`RunRecord.ingest`); the plots read
its arrays on their redraw timer.  ``version`` increases with every change,
so a plot redraws only what changed.  The coach's findings about the run
(computed on the training thread) arrive as events too and are kept in
``findings``.  Runs from earlier sessions are read
back from their run folders (``history.csv``, ``epochs.csv``) by
:func:`record_from_folder`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.catalog.activations import ACTIVATIONS
from engine.coach import Finding
from engine.events import (Compiling, ConfusionReport, DataPoints, DecisionSurface, EpochEnd, RunFailed,
                           RunFinished, RunStarted, StepMetrics)
from engine.errors import DescentError
from engine.formats.runfolder import RunFolder, read_run, read_run_info, read_run_status
from engine.formats.runlayout import EPOCH_FIELDS, PER_LAYER_FIELDS

# the window keeps every column a run folder holds, under the writer's names
PER_LAYER = PER_LAYER_FIELDS
EPOCH_KEYS = EPOCH_FIELDS
HEATMAP_COLUMNS = 1024  # histogram snapshots kept per run (older ones thinned out)


@dataclass(frozen=True)
class LayerView:
    name: str
    units: int | None
    activation: str
    relu_family: bool
    saturating: bool

    @property
    def label(self) -> str:
        return self.name


class Grow:
    """An append-only numpy buffer with amortised O(1) appends."""

    def __init__(self, width: int | None = None, dtype=np.float64, capacity: int = 256):
        self.width = width
        shape = (capacity,) if width is None else (capacity, width)
        self._a = np.full(shape, np.nan, dtype=dtype) if np.dtype(dtype).kind == "f" else np.zeros(shape, dtype)
        self.n = 0

    def _reserve(self, extra: int) -> None:
        need = self.n + extra
        if need <= len(self._a):
            return
        cap = max(need, 2 * len(self._a))
        grown = np.full((cap,) + self._a.shape[1:], np.nan, dtype=self._a.dtype) \
            if self._a.dtype.kind == "f" else np.zeros((cap,) + self._a.shape[1:], self._a.dtype)
        grown[:self.n] = self._a[:self.n]
        self._a = grown

    def append(self, value) -> None:
        self._reserve(1)
        self._a[self.n] = value
        self.n += 1

    def extend(self, values) -> None:
        values = np.asarray(values)
        k = len(values)
        if k == 0:
            return
        self._reserve(k)
        self._a[self.n:self.n + k] = values
        self.n += k

    @property
    def data(self) -> np.ndarray:
        return self._a[:self.n]

    def __len__(self) -> int:
        return self.n


class Heatmap:
    """Histogram snapshots over time, thinned to at most ``limit`` columns
    (every other one dropped when full), so long runs stay small."""

    def __init__(self, n_layers: int, n_bins: int, limit: int = HEATMAP_COLUMNS):
        self.limit = limit
        self.stride = 1
        self._seen = 0
        self.steps = Grow()
        self.counts = Grow(n_layers * n_bins, np.float32)
        self.shape = (n_layers, n_bins)

    def add(self, step: int, histograms: np.ndarray) -> None:
        self._seen += 1
        if (self._seen - 1) % self.stride:
            return
        if len(self.steps) >= self.limit:
            keep = slice(0, None, 2)
            steps, counts = self.steps.data[keep].copy(), self.counts.data[keep].copy()
            self.steps, self.counts = Grow(), Grow(self.counts.width, np.float32)
            self.steps.extend(steps)
            self.counts.extend(counts)
            self.stride *= 2
        self.steps.append(step)
        self.counts.append(np.asarray(histograms, dtype=np.float32).reshape(-1))

    def layer(self, i: int) -> np.ndarray:
        """(time, bins) counts of layer i."""
        L, B = self.shape
        return self.counts.data.reshape(-1, L, B)[:, i, :]


class RunRecord:
    """Everything the window shows about one run."""

    def __init__(self, run_id: int, experiment: dict, name: str = "", folder: Path | None = None,
                 status: str = "starting"):
        self.run_id = run_id
        self.experiment = experiment
        self.name = name or f"#{run_id} {experiment.get('name', 'run')}"
        self.folder = folder
        self.status = status
        self.reason = ""
        self.color = "#1f77b4"   # set by the run list: one colour per run
        self.label = self.name   # legend label when overlaid (set by the dashboard)
        self.tag = ""            # what the run is within its job: a stage or a variant
        self.stage = ""          # the stage (phase) this record trains: it cannot be trained alone
        self.findings: list[Finding] = []   # the coach's, in the order found
        self.phases: list[tuple[int, str]] = []   # (first step, name) of each phase of a staged run
        self.version = 0          # any change
        self.step_version = 0     # new diagnostics records (StepMetrics)
        self.epoch_version = 0    # new epoch results
        self.compiling = False
        self.layers: list[LayerView] = layers_from_experiment(experiment)
        self.steps_per_epoch = 1
        self.total_steps = 0
        self.task = "classification"
        self.n_classes = 0
        self.class_names: tuple = ()
        self.n_params = 0
        self.histogram_edges = np.linspace(-6, 6, 49)
        self.image_shape = None
        self.loss_step, self.loss = Grow(dtype=np.int64), Grow()
        self._reset_logged(len(self.layers))
        self.epochs = {k: Grow() for k in EPOCH_KEYS}
        self.surface: DecisionSurface | None = None
        self.confusion: ConfusionReport | None = None
        self.points: DataPoints | None = None
        self.last: StepMetrics | None = None
        self.step = 0
        self.epoch = 0.0
        self.elapsed = 0.0
        self.steps_per_second = math.nan   # the engine's (compiled steps only)
        self.rate = math.nan               # measured by the window: steps per second of running time
        self.wall_seconds = 0.0            # running time (pauses and data loading excluded)
        self.diverged_step: int | None = None
        self.weights: dict | None = None
        self.summary: dict | None = None
        self.lr_changes: list[tuple[int, float]] = []
        self.loaded = True      # False for a folder run whose CSVs are not read yet
        self.changes = ""       # what this run changes from the experiment it varies (a variant, the coach's)
        self.paused = False     # set by the window: a paused run is still "running" to the engine

    def _reset_logged(self, n_layers: int) -> None:
        self.n_layers = n_layers
        self.log_step, self.log_epoch, self.lr, self.momentum = Grow(dtype=np.int64), Grow(), Grow(), Grow()
        self.per_layer = {k: Grow(n_layers) for k in PER_LAYER}
        self.heatmap = Heatmap(n_layers, len(self.histogram_edges) - 1)

    # -- derived values ------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.status not in ("starting", "running")

    @property
    def shown_status(self) -> str:
        """The status as a person reads it: "paused" while the window holds a running run."""
        if self.paused and self.status == "running":
            return "paused"
        return self.status.replace("_", " ")

    @property
    def is_classification(self) -> bool:
        return self.task == "classification"

    def best_val(self) -> tuple[str, float]:
        """("val acc", best) for classification, ("val loss", lowest) otherwise; a run from disk
        whose curves are not read yet answers from its summary.json (listed, not ticked)."""
        if not self.loaded and self.summary:
            acc, loss = self.summary.get("best_val_accuracy"), self.summary.get("final_val_loss")
            if isinstance(acc, (int, float)) and math.isfinite(acc):
                return "val acc", float(acc)
            if isinstance(loss, (int, float)) and math.isfinite(loss):
                return "val loss", float(loss)
            return "val acc", math.nan
        if self.is_classification:
            acc = self.epochs["val_accuracy"].data
            acc = acc[np.isfinite(acc)]
            return "val acc", float(acc.max()) if len(acc) else math.nan
        loss = self.epochs["val_loss"].data
        loss = loss[np.isfinite(loss)]
        return "val loss", float(loss.min()) if len(loss) else math.nan

    def best_val_text(self) -> str:
        label, value = self.best_val()
        if math.isnan(value):
            return "–"
        return f"{value:.1%}" if label == "val acc" else f"{value:.4g} (loss)"

    # -- events --------------------------------------------------------------------------------

    def ingest(self, events) -> None:
        for ev in events:
            self._ingest(ev)
        self.version += 1

    def _ingest(self, ev) -> None:
        if isinstance(ev, StepMetrics):
            self.step_version += 1
            k = len(ev.losses)
            self.loss_step.extend(np.arange(ev.step - k + 1, ev.step + 1))
            self.loss.extend(ev.losses)
            self.log_step.append(ev.step)
            self.log_epoch.append(ev.epoch)
            self.lr.append(ev.learning_rate)
            self.momentum.append(ev.momentum)
            if len(ev.grad_norm) != self.n_layers:
                self._reset_logged(len(ev.grad_norm))
            for key in PER_LAYER:
                self.per_layer[key].append(getattr(ev, key))
            self.heatmap.add(ev.step, ev.histograms)
            self.last = ev
            self.step, self.epoch = ev.step, ev.epoch
            self.elapsed, self.steps_per_second = ev.elapsed, ev.steps_per_second
            self.compiling = False
            if self.status == "starting":
                self.status = "running"
        elif isinstance(ev, EpochEnd):
            self.epoch_version += 1
            for key in EPOCH_KEYS:
                self.epochs[key].append(getattr(ev, key))
            self.epoch = float(ev.epoch)
        elif isinstance(ev, DecisionSurface):
            self.surface = ev
        elif isinstance(ev, ConfusionReport):
            self.confusion = ev
        elif isinstance(ev, DataPoints):
            self.points = ev
        elif isinstance(ev, RunStarted):
            self._started(ev)
        elif isinstance(ev, Compiling):
            self.compiling = not ev.done
        elif isinstance(ev, RunFinished):
            self.step_version += 1   # the diverged marker
            self.status, self.reason = ev.status, ev.reason
            self.summary, self.weights = ev.summary, ev.weights
            self.step = ev.step
            self.compiling = False
            if ev.status == "diverged":
                self.diverged_step = ev.step + 1
        elif isinstance(ev, RunFailed):
            self.status, self.reason = "failed", ev.message
            self.compiling = False
        elif isinstance(ev, Finding):
            self.findings.append(ev)

    def _started(self, ev: RunStarted) -> None:
        """A run starts, or the next phase of a stage continues it on the same time axis."""
        continuing = self.step > 0
        self.experiment = ev.experiment
        self.layers = [LayerView(f"layer {li.index + 1}" if li.index < len(ev.layers) - 1 else "output",
                                 li.units, li.activation, li.relu_family, li.saturating) for li in ev.layers]
        self.histogram_edges = np.asarray(ev.histogram_edges)
        if not continuing:
            self._reset_logged(len(self.layers))
        self.steps_per_epoch, self.total_steps = ev.steps_per_epoch, ev.total_steps
        self.task, self.n_classes, self.class_names = ev.task, ev.n_classes, tuple(ev.class_names)
        self.n_params, self.image_shape = ev.n_params, ev.image_shape
        self.stage = ev.stage
        if "/" in ev.stage:    # "<stage>/<phase>": phases continue one network on one time axis
            self.phases.append((self.step if continuing else 0, ev.stage.split("/", 1)[1]))
            self.step_version += 1
        self.status = "running"


# ----------------------------------------------------------------------- helpers

def layers_from_experiment(experiment: dict) -> list[LayerView]:
    out = []
    model = experiment.get("model", {})
    for i, layer in enumerate(model.get("layers", [])):
        act = ACTIVATIONS.get(layer.get("activation", "relu")) if layer.get("activation") in ACTIVATIONS else None
        out.append(LayerView(f"layer {i + 1}", layer.get("units"), layer.get("activation", "?"),
                             bool(act and act.relu_family), bool(act and act.saturating)))
    out_act = model.get("output", {}).get("activation", "auto")
    out.append(LayerView("output", None, out_act, False, False))
    return out


def summarize(experiment: dict) -> str:
    """One line: data · layers · optimizer · batch size."""
    data = experiment.get("data", {}).get("name", "?")
    layers = experiment.get("model", {}).get("layers", [])
    parts = []
    groups: list[list] = []
    for layer in layers:
        key = (layer.get("units"), layer.get("activation"), layer.get("batch_norm", "none") != "none",
               layer.get("dropout", 0) or 0)
        if groups and groups[-1][0] == key:
            groups[-1][1] += 1
        else:
            groups.append([key, 1])
    for (units, act, bn, drop), count in groups:
        text = f"{count}×{units}" if count > 1 else f"{units}"
        text += f" {act}" + (" BN" if bn else "") + (f" drop{drop:g}" if drop else "")
        parts.append(text)
    model = ", ".join(parts) if parts else "no hidden layer"
    opt = experiment.get("optimizer", {})
    sched = experiment.get("schedule", {}).get("name", "constant")
    lr = opt.get("learning_rate")
    text = f"{data} · {model} · {opt.get('name', '?')} lr {lr:g}" if isinstance(lr, (int, float)) \
        else f"{data} · {model} · {opt.get('name', '?')}"
    if sched != "constant":
        text += f" ({sched})"
    bs = experiment.get("training", {}).get("batch_size")
    return text + (f" · batch {bs}" if bs else "")


def distinguishing_labels(records: list) -> dict[int, str]:
    """Short legend labels for overlaid runs: the run number plus what differs between them
    (optimizer, learning rate, batch size, ...), e.g. "#3 adam lr 0.001"."""
    def model(e):
        return summarize({"model": e.get("model", {})}).split(" · ")[1]

    features = [lambda e: e.get("data", {}).get("name", "?"), model,
                lambda e: e.get("optimizer", {}).get("name", "?"),
                lambda e: f"lr {e.get('optimizer', {}).get('learning_rate', 0):g}",
                lambda e: e.get("schedule", {}).get("name", "constant"),
                lambda e: f"batch {e.get('training', {}).get('batch_size', '?')}",
                lambda e: f"seed {e.get('seed', '?')}"]
    differing = []
    for f in features:
        try:
            if len({f(r.experiment) for r in records}) > 1:
                differing.append(f)
        except (KeyError, TypeError, AttributeError, IndexError):
            continue
    out = {}
    for r in records:
        tag = f"#{r.run_id}" if r.run_id > 0 else r.name[:15]
        if r.tag:   # a stage or variant says best what it is
            out[r.run_id] = f"{tag} {r.tag}"
            continue
        try:
            parts = [f(r.experiment) for f in differing]
        except (KeyError, TypeError, AttributeError, IndexError):
            parts = []
        out[r.run_id] = " ".join([tag] + parts) if parts else r.name
    return out


def folder_title(folder: Path, experiment: dict) -> str:
    """A run from disk as a person names it: its title and when it ran ("Dying ReLUs · 3 Dec 14:02"),
    not the folder's "20261203-140210-dying-relus-ReLU-coach-dead_relus"."""
    title = experiment.get("title") or experiment.get("name") or folder.name
    parts = folder.name.split("-", 2)
    stamp = ""
    if len(parts) == 3 and len(parts[0]) == 8 and len(parts[1]) == 6 and (parts[0] + parts[1]).isdigit():
        months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
        month = int(parts[0][4:6])
        if 1 <= month <= 12:
            stamp = f" · {int(parts[0][6:8])} {months[month - 1]} {parts[1][:2]}:{parts[1][2:4]}"
    return f"{title}{stamp}"


def record_from_folder(folder: Path, run_id: int) -> RunRecord:
    """A record for a run folder written by RunWriter (this session's or earlier); its curves are
    read when it is first shown (:func:`load_folder_curves`)."""
    folder = Path(folder)
    try:
        info = read_run_info(folder)
        experiment, summary, reason = info.experiment, info.summary or None, str(info.summary.get("reason", ""))
    except DescentError as exc:   # listed all the same, saying why it shows nothing
        experiment, summary, reason = {"name": folder.name}, None, str(exc)
    record = RunRecord(run_id, experiment, name=folder_title(folder, experiment), folder=folder,
                       status=read_run_status(folder))
    record.summary, record.reason = summary, reason
    record.loaded = False
    return record


def load_folder_curves(record: RunRecord) -> None:
    """Read the record's run folder (:func:`engine.formats.runfolder.read_run`) into it, when it is
    first shown.  A folder that cannot be read leaves the record without curves and says why."""
    if record.loaded or record.folder is None:
        return
    record.loaded = True
    try:
        _fill_from_run(record, read_run(record.folder))
    except DescentError as exc:   # the run list's tooltip says why (after why the run ended)
        record.reason = "; ".join(filter(None, (record.reason, f"curves not read: {exc}")))
    if record.status == "diverged":
        record.diverged_step = record.step + 1
    record.version += 1
    record.step_version += 1
    record.epoch_version += 1


def _fill_from_run(record: RunRecord, run: RunFolder) -> None:
    history, epochs = run.history, run.epochs
    if len(history["step"]):
        n_layers = run.n_layers
        record._reset_logged(n_layers)
        if len(record.layers) != n_layers:
            record.layers = [LayerView(f"layer {i + 1}", None, "?", False, False) for i in range(n_layers)]
        steps = history["step"].astype(np.int64)
        record.loss_step.extend(steps)
        record.loss.extend(history["loss"])
        record.log_step.extend(steps)
        record.log_epoch.extend(history["epoch"])
        record.lr.extend(history["learning_rate"])
        record.momentum.extend(history["momentum"])
        for key in PER_LAYER:
            record.per_layer[key].extend(run.per_layer[key])
        record.step = int(steps[-1])
        record.epoch = float(history["epoch"][-1])
        record.elapsed, record.steps_per_second = float(history["elapsed"][-1]), float(history["steps_per_second"][-1])
        spe = record.epoch and record.step / record.epoch
        record.steps_per_epoch = max(1, int(round(spe))) if spe else 1
    if len(epochs["epoch"]):
        for key in EPOCH_KEYS:
            record.epochs[key].extend(epochs[key])
        acc = record.epochs["val_accuracy"].data
        record.task = "classification" if np.isfinite(acc).any() else "regression"
