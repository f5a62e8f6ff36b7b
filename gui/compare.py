"""The Compare tab: variants x seeds of one experiment, trained fairly, reported honestly.

Press *Run comparison* and the experiment in the editors is trained once per
variant of its ``compare`` section (or, without one, as it is) and per seed,
by the engine's job runner (:func:`engine.jobs.runner.run_job`, the one the
command line uses) in a process pool (both cores) or on Ray (*Run on*: a local Ray or a
cluster's address, as ``--cluster`` does), driven by a
:class:`~gui.worker.TrainingWorker` on a thread of its own, as the Train tab's
jobs are.  On that thread a :class:`ComparisonSnapshots` watcher turns every
finished run into the summary so far (the same
:func:`engine.jobs.compare_report.summarize` the headless report uses) and the
mean/min-max curves (:func:`engine.jobs.compare_report.record_curves`), sent
to the GUI thread as one immutable :class:`ComparisonSnapshot`.  The tab
only draws snapshots: one mean line per variant with its min-max band across
seeds, and the table with the verdict of the one rule
(:func:`engine.jobs.compare_report.distinguishable`: "not distinguishable at N seeds"
unless the paired gap is larger than the seed-to-seed spread).

*Open comparison folder* shows a comparison run earlier, in the window or by
``python main.py run``; the newest one of the loaded experiment is shown
when the tab is opened.

An experiment with a ``sweep`` section runs here the same way (*Run sweep*)
and is shown by :class:`gui.sweep_view.SweepView` instead: the metric against
the swept hyperparameter, the trials' table, the runs behind a clicked point.
"""
from __future__ import annotations

import dataclasses
import html
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QInputDialog, QLabel, QProgressBar,
                               QPushButton, QSizePolicy, QStackedWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from engine.control import RunControl
from engine.errors import DescentError
from engine.events import ComparisonFinished, ComparisonRecord, JobStarted, RunFailed
from engine.formats.runstore import default_run_dir, folder_experiment_name, safe_name
from engine.jobs.compare_report import (CURVE_METRICS, format_stat, format_steps_to_target, gap_figures,
                                        read_comparison, record_curves, summarize, verdict_kind)
from engine.jobs.ray_executor import LOCAL, check_cluster
from engine.jobs.runner import JobRequest
from engine.jobs.sweep_report import read_sweep
from engine.params import Param
from engine.spec.compare import resolve_compare
from engine.spec.seeds import COMPARE_SEEDS, seed_list
from engine.spec.sections import TRAINING_PARAMS

from .compat import collect_garbage_on_gui_thread
from .plots import RUN_COLORS, add_legend, setup_plot
from .sweep_view import SweepSnapshot, SweepSnapshots, SweepView, describe_sweep, sweep_folder
from .widgets.params import NumberEditor
from .widgets.results import column, report_label, result_table, split
from .worker import WorkerJob, WorkerThread

METRIC_LABELS = {"val_accuracy": "validation accuracy (%)", "val_loss": "validation loss",
                 "loss": "training loss (each diagnostics record)", "train_loss": "training loss (epoch mean)",
                 "train_accuracy": "training accuracy (%)"}
MIN_POINTS = 3    # fewer epochs than this (a quick look): show the per-record training loss instead
PERCENT = ("val_accuracy", "train_accuracy")
VERDICT_COLORS = {"best": "#1b7a2a", "worse": "#a01010", "same": "#555555", "none": "#555555"}
# The tab's two settings, checked like the experiment keys they stand for (compare.seeds as a
# count, training.max_steps), with the tab's own wording.
SEEDS_PARAM = Param(COMPARE_SEEDS.default_count, "Runs per variant, with seeds base, base + 1, ...: the spread across seeds "
                                   "is what a difference must beat to count (at least 2 seeds for any verdict).",
                    "int", 1, COMPARE_SEEDS.most)
QUICK_LOOK_PARAM = dataclasses.replace(
    TRAINING_PARAMS["max_steps"], doc="A quick look: stop every run after this many steps. Off: as planned "
                                      "(the experiment's epochs).")
QUICK_LOOK_STEPS = 100   # shown when the quick look is ticked on
ADDRESS = "address"   # the Run on entry that asks for a cluster's address


def _frozen(curves: dict) -> dict:
    for per_variant in curves.values():
        for arrays in per_variant.values():
            for a in arrays.values():
                a.setflags(write=False)
    return curves


@dataclass(frozen=True)
class ComparisonSnapshot:
    """What the tab draws: the engine's summary and curves of the runs done so far."""
    folder: str
    done: int
    total: int
    summary: dict | None       # engine.jobs.compare_report.summarize(...) (None before the first run ends)
    curves: dict               # metric -> variant -> {"steps", "mean", "min", "max", "count"} (read-only)
    message: str               # one line: the run that just finished, or what went wrong
    finished: bool = False
    failed: bool = False


class ComparisonSnapshots:
    """Watches a comparison job on its training thread (see :class:`gui.worker.WorkerJob`) and
    turns its events into the snapshots the tab draws, so the GUI thread never summarizes."""

    def __init__(self, experiment: dict, folder: str):
        self.experiment = experiment
        self.folder = folder
        self.records: list[dict] = []
        self.curves: dict = {}
        self.seeds: list = []

    def observe(self, event) -> list:
        if isinstance(event, JobStarted):
            self.seeds = list(event.seeds)
            return [ComparisonSnapshot(self.folder, 0, event.runs, None, {},
                                       f"training {event.runs} runs in {self.folder} ...")]
        if isinstance(event, ComparisonRecord):
            r = event.record
            self.records.append(r)
            summary = summarize(self.records, self.experiment["compare"], self.experiment, seeds=self.seeds)
            self.curves = _frozen({m: record_curves(self.records, m) for m in CURVE_METRICS})
            return [ComparisonSnapshot(self.folder, event.done, event.total, summary, self.curves,
                                       f"{r['variant']} seed {r['seed']}: {r['status']} ({r['wall_seconds']:.1f} s)")]
        if isinstance(event, ComparisonFinished):
            summary, n = event.summary, len(self.records)
            return [ComparisonSnapshot(
                self.folder, n, n, summary, self.curves,
                f"done: {n} runs in {summary['total_wall_seconds']:.0f} s on {summary['workers']} "
                f"process{'es' if summary['workers'] > 1 else ''}; written to {self.folder}", finished=True)]
        return []


def add_band(plot: pg.PlotItem, x: np.ndarray, lo: np.ndarray, mean: np.ndarray, hi: np.ndarray,
             color: str, name: str) -> list:
    """A mean line over a translucent min-max band; returns the items added."""
    pen = pg.mkPen(color, width=2)
    line = plot.plot(x, mean, pen=pen, name=name, symbol="o" if len(x) <= 40 else None, symbolSize=4,
                     symbolPen=None, symbolBrush=QColor(color))
    lower = pg.PlotCurveItem(x, lo, pen=pg.mkPen(None))
    upper = pg.PlotCurveItem(x, hi, pen=pg.mkPen(None))
    fill = QColor(color)
    fill.setAlpha(55)
    band = pg.FillBetweenItem(lower, upper, brush=pg.mkBrush(fill))
    for item in (lower, upper, band):
        plot.addItem(item)
    line.setZValue(1)
    return [line, lower, upper, band]


def describe_plan(exp: dict, seeds: int | None = None) -> str:
    """One line: what Run comparison is about to train."""
    cfg = exp.get("compare")
    n_seeds = seeds or (len(cfg["seeds"]) if cfg else 3)
    if cfg:
        names = [v["name"] for v in cfg["variants"]]
        shown = ", ".join(names[:9]) + (", ..." if len(names) > 9 else "")
        return (f"{len(names)} variants ({shown}) × {n_seeds} seeds = {len(names) * n_seeds} runs; every "
                f"variant of a seed starts from the same weights and sees the same batches")
    return (f"this experiment declares no variants: it runs as it is over {n_seeds} seeds, to show the "
            f"seed-to-seed spread (open a comparison preset, e.g. 08 · optimizer race, to compare variants)")


class ComparisonView(QWidget):
    """The Compare tab (see the module docstring)."""

    def __init__(self, experiment_source=None, run_root: Path | None = None, parent=None):
        super().__init__(parent)
        collect_garbage_on_gui_thread()   # the comparison thread allocates: it must never collect Qt objects
        self.experiment_source = experiment_source   # callable -> the editors' resolved experiment
        self.run_root = run_root
        self.workers = 2
        self.snapshot: ComparisonSnapshot | None = None
        self.running_folder: str | None = None
        self.items: list = []
        self._plan_name = None

        self.plan = QLabel()
        self.plan.setWordWrap(True)
        self.plan.setTextFormat(Qt.RichText)
        self.plan.setStyleSheet("QLabel { background: #eef3fb; border: 1px solid #c9d6ea; padding: 6px; }")
        self.seeds = NumberEditor(SEEDS_PARAM, "compare.seeds")
        self.seeds.changed.connect(self.show_plan)
        self.max_steps = NumberEditor(QUICK_LOOK_PARAM, "training.max_steps", fallback=QUICK_LOOK_STEPS)
        placeholder = self.max_steps.spin.lineEdit()   # "as planned" must be read whole, not "as plan"
        self.max_steps.spin.setMinimumWidth(placeholder.fontMetrics().horizontalAdvance(
            placeholder.placeholderText() or "as planned") + 60)
        self.run_button = QPushButton("Run comparison")
        self.run_button.setToolTip("Train every variant over every seed (two processes), then report")
        self.run_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop every run at its next step; the runs done so far are reported")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setEnabled(False)
        self.run_on = QComboBox()
        self.run_on.addItem(f"this machine ({self.workers} processes)", None)
        self.run_on.addItem("local Ray", LOCAL)
        self.run_on.addItem("cluster address…", ADDRESS)
        self.run_on.setToolTip("Where the runs train: a pool of processes here, a Ray started here, or a running Ray "
                               "cluster (HOST:PORT, ray://HOST:PORT or auto; see 'Sweeps and clusters' in the "
                               "README). The results are the same on each.")
        self.cluster_address: str | None = None
        self._run_on_index = 0
        self.run_on.activated.connect(self._choose_run_on)
        self.open_button = QPushButton("Open comparison folder…")
        self.open_button.setToolTip("Show a comparison or a sweep run earlier (here or by 'python main.py run')")
        self.open_button.clicked.connect(lambda: self.open_folder())
        self.progress = QProgressBar()
        self.progress.setFormat("%v/%m runs")
        self.progress.setMaximumWidth(160)
        self.progress.hide()
        self.status = QLabel()
        self.status.setStyleSheet("color: #444;")
        # a long status ("written to <folder>") must wrap in the room left, not widen the page: at
        # 1600 px it pushed the plot's right end and the verdict column behind a horizontal scrollbar
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)

        controls = QHBoxLayout()
        for text, widget in (("seeds", self.seeds), ("at most", self.max_steps)):
            controls.addWidget(QLabel(text))
            controls.addWidget(widget)
        controls.addWidget(QLabel("steps per run"))
        controls.addWidget(QLabel("run on"))
        controls.addWidget(self.run_on)
        for w in (self.run_button, self.stop_button, self.open_button, self.progress):
            controls.addWidget(w)
        controls.addWidget(self.status, 1)

        self.metric_box = QComboBox()
        for key in CURVE_METRICS:
            self.metric_box.addItem(METRIC_LABELS[key], key)
        self.metric_box.currentIndexChanged.connect(lambda _i: self._draw_curves())
        self.plot_widget = pg.PlotWidget()
        self.plot = self.plot_widget.getPlotItem()
        setup_plot(self.plot, "step", METRIC_LABELS["val_accuracy"])
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.legend = add_legend(self.plot, offset=(-4, -4))
        self.empty_text = pg.TextItem("Run comparison (or open a comparison folder): each variant's mean over "
                                      "its seeds appears here, with a band from the lowest to the highest seed.",
                                      color="#666", anchor=(0.5, 0.5))
        self.plot.addItem(self.empty_text, ignoreBounds=True)
        self.plot_note = QLabel("line: mean over seeds · band: lowest to highest seed")
        self.plot_note.setStyleSheet("color: #666;")
        plot_head = QHBoxLayout()
        plot_head.addWidget(QLabel("<b>Each variant over its seeds</b>"))
        plot_head.addWidget(self.metric_box)
        plot_head.addWidget(self.plot_note, 1)
        self.table = result_table()
        self.report = report_label()
        self.sweep_view = SweepView()       # a sweep's plot and table instead of the curves
        self.pages = QStackedWidget()
        self.pages.addWidget(split(column(plot_head, (self.plot_widget, 1)), column((self.table, 1), self.report)))
        self.pages.addWidget(self.sweep_view)
        self.running_sweep = False
        layout = QVBoxLayout(self)
        layout.addWidget(self.plan)
        layout.addLayout(controls)
        layout.addWidget(self.pages, 1)

        self.worker: WorkerThread | None = None   # one per comparison: an idle tab holds no thread
        self.control: RunControl | None = None
        self._draw_curves()
        self.show_plan()

    updated = Signal(object)      # a snapshot was drawn (tests, scripts)

    # ------------------------------------------------------------------ the plan

    def current_experiment(self) -> dict | None:
        if self.experiment_source is None:
            return None
        return self.experiment_source()

    def show_plan(self, exp: dict | None = None) -> None:
        """Say what Run comparison would train; on a new experiment, show its newest comparison."""
        try:
            exp = exp or self.current_experiment()
        except DescentError as exc:
            self.plan.setText(f"<b>The experiment in the editors is not valid:</b> {html.escape(str(exc))}")
            return
        if exp is None:
            self.plan.setText("Load an experiment to compare.")
            return
        section = exp.get("sweep") or exp.get("compare")
        if section and self._plan_name != exp["name"]:
            self.seeds.set_value(len(section["seeds"]))
        title = html.escape(exp.get("title") or exp["name"])
        plan = describe_sweep(exp, self.seeds.value()) if exp.get("sweep") else describe_plan(exp, self.seeds.value())
        self.plan.setText(f"<b>{title}</b><br>{html.escape(plan)}. "
                          "A difference counts only when it is larger than the seed-to-seed spread.")
        self.run_button.setText("Run sweep" if exp.get("sweep") else "Run comparison")
        if self._plan_name != exp["name"]:
            self._plan_name = exp["name"]
            if self.running_folder is None:
                newest = self.newest_folder(exp["name"])
                if newest is not None:
                    self.open_folder(newest, quiet=True)

    def newest_folder(self, name: str) -> Path | None:
        """The newest comparison of experiment ``name`` under the run root."""
        if self.run_root is None or not Path(self.run_root).is_dir():
            return None
        safe = safe_name(name)
        found = [p.parent for pattern in ("*/comparison.json", "*/sweep.json")
                 for p in Path(self.run_root).glob(pattern)
                 if folder_experiment_name(p.parent).startswith(safe)]   # <name>, <name>-compare or <name>-sweep
        return max(found, key=lambda p: p.name) if found else None

    # ------------------------------------------------------------------ running

    def start(self) -> JobRequest | None:
        """Submit the comparison to the job runner on a thread of its own; the request, or None."""
        if self.running_folder is not None:
            return None
        try:
            exp = self.current_experiment()
            if exp is None:
                return None
            section = exp.get("sweep") or exp.get("compare")
            if not section:
                exp = dict(exp, compare=resolve_compare({"variants": [{"name": exp["name"]}],
                                                         "seeds": self.seeds.value()}, exp))
                seeds = None
            else:
                seeds = tuple(seed_list(self.seeds.value(), exp["seed"])) \
                    if self.seeds.value() != len(section["seeds"]) else None
        except DescentError as exc:
            self._set_status(f"cannot compare: {exc}", error=True)
            return None
        root = self.run_root if self.run_root is not None else Path(tempfile.mkdtemp(prefix="descent-compare-"))
        sweep = bool(exp.get("sweep"))
        folder = str(default_run_dir(f"{exp['name']}-{'sweep' if sweep else 'compare'}", root))
        cluster = self.cluster()
        request = JobRequest(exp, folder, seeds=seeds, max_steps=self.max_steps.value() or None,
                             workers=self.workers if cluster in (None, LOCAL) else None, cluster=cluster)
        self._end_thread()    # the previous comparison's thread, if its last batch came just now
        self.running_folder = folder
        self.running_sweep = sweep
        self.snapshot = None
        self._update_buttons()
        self.control = RunControl()
        self.worker = WorkerThread(name="descent-comparison")
        self.worker.worker.batch.connect(self.on_batch)
        watcher = SweepSnapshots(exp, folder) if sweep else ComparisonSnapshots(exp, folder)
        self.worker.submit(WorkerJob(0, request, self.control, watchers=(watcher,)))
        return request

    def cluster(self) -> str | None:
        """The request's cluster for the Run on choice (None: this machine's pool)."""
        choice = self.run_on.currentData()
        return self.cluster_address if choice == ADDRESS else choice

    def _choose_run_on(self, index: int, address: str | None = None) -> None:
        """Run on changed; the cluster entry asks for an address (``address`` answers instead, for scripts)."""
        if self.run_on.itemData(index) == ADDRESS:
            if address is None:
                address, ok = QInputDialog.getText(self, "Ray cluster", "Address of a running Ray cluster "
                                                   "(HOST:PORT, ray://HOST:PORT or auto):",
                                                   text=self.cluster_address or "auto")
                address = address.strip() if ok else ""
            try:
                self.cluster_address = check_cluster(address)
            except DescentError as exc:
                if address:
                    self._set_status(str(exc), error=True)
                if self.cluster_address is None:     # no address yet: back to the previous choice
                    self.run_on.setCurrentIndex(self._run_on_index)
                    return
            self.run_on.setItemText(index, f"cluster {self.cluster_address}")
        self._run_on_index = index

    def stop(self) -> None:
        if self.running_folder is not None and self.control is not None:
            self.control.stop()
            self._set_status("stopping every run at its next step…")

    def shutdown(self, timeout_ms: int = 60_000) -> bool:
        """Stop a running comparison and end its thread (the window is closing)."""
        self.stop()
        return self._end_thread(timeout_ms)

    def _end_thread(self, timeout_ms: int = 60_000) -> bool:
        if self.worker is None:
            return True
        ok = self.worker.shutdown(timeout_ms=timeout_ms)
        if ok:
            self.worker = None
        return ok

    @property
    def running(self) -> bool:
        return self.running_folder is not None

    def on_batch(self, _job_id: int, events) -> None:
        """The worker's batch: draw its snapshots; a job that failed ends with the reason."""
        for event in events:
            if isinstance(event, (ComparisonSnapshot, SweepSnapshot)):
                self.on_snapshot(event)
            elif isinstance(event, RunFailed) and self.running_folder is not None:
                last = self.sweep_view.snapshot if self.running_sweep else self.snapshot
                done = last.done if last is not None else 0
                self.on_snapshot(SweepSnapshot(self.running_folder, done, 0, None, event.message, finished=True,
                                               failed=True) if self.running_sweep else
                                 ComparisonSnapshot(self.running_folder, done, 0, None, {}, event.message,
                                                    finished=True, failed=True))

    def on_snapshot(self, snap: ComparisonSnapshot | SweepSnapshot) -> None:
        if snap.folder != self.running_folder and self.running_folder is not None:
            return    # a snapshot of a comparison the tab no longer follows
        if snap.finished:
            self.running_folder = None
            self._end_thread()   # the worker's slot returns right after the job's last events
        sweep = isinstance(snap, SweepSnapshot)
        if not sweep and snap.summary is None and self.snapshot is not None:   # a failure: keep what the runs showed
            snap = dataclasses.replace(snap, summary=self.snapshot.summary, curves=self.snapshot.curves)
        self.progress.setVisible(not snap.finished and snap.total > 0)
        self.progress.setMaximum(max(1, snap.total))
        self.progress.setValue(snap.done)
        self._set_status(snap.message, error=snap.failed)
        self._update_buttons()
        self.pages.setCurrentWidget(self.sweep_view if sweep else self.pages.widget(0))
        if sweep:
            self.sweep_view.show_snapshot(snap)
        else:
            self.snapshot = snap
            self._draw()
        self.updated.emit(snap)

    def open_folder(self, folder: str | Path | None = None, quiet: bool = False) -> bool:
        if folder is None:
            start = str(self.run_root) if self.run_root is not None else ""
            folder = QFileDialog.getExistingDirectory(self, "Open a comparison folder", start)
            if not folder:
                return False
        if sweep_folder(folder):
            return self._open_sweep(folder, quiet)
        try:
            summary, curves = read_comparison(folder)
        except DescentError as exc:
            if not quiet:
                self._set_status(str(exc), error=True)
            return False
        n = sum(len(v["runs"]) for v in summary["variants"].values())
        self.snapshot = ComparisonSnapshot(str(folder), n, n, summary, _frozen(curves),
                                           f"shown: {folder}", finished=True)
        self._set_status(f"shown: {folder}")
        self.pages.setCurrentIndex(0)
        self._draw()
        return True

    def _open_sweep(self, folder: str | Path, quiet: bool) -> bool:
        try:
            summary = read_sweep(folder)
        except DescentError as exc:
            if not quiet:
                self._set_status(str(exc), error=True)
            return False
        n = sum(e["runs_done"] for e in summary["trials"])
        self.pages.setCurrentWidget(self.sweep_view)
        self.sweep_view.show_snapshot(SweepSnapshot(str(folder), n, n, summary, f"shown: {folder}", finished=True))
        self._set_status(f"shown: {folder}")
        return True

    def _update_buttons(self) -> None:
        running = self.running_folder is not None
        self.run_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.open_button.setEnabled(not running)
        self.seeds.setEnabled(not running)
        self.max_steps.setEnabled(not running)
        self.run_on.setEnabled(not running)

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setToolTip(text)
        self.status.setStyleSheet(f"color: {'#a01010' if error else '#444'};")

    # ------------------------------------------------------------------ drawing

    def _draw(self) -> None:
        s = self.snapshot
        if s is not None and s.summary and s.folder != getattr(self, "_drawn_folder", None):
            self._drawn_folder = s.folder      # a new comparison: plot the metric its verdicts use
            metric = s.summary["metric"]
            counts = [len(c["steps"]) for c in s.curves.get(metric, {}).values()]
            if counts and max(counts) < MIN_POINTS and s.curves.get("loss"):
                metric = "loss"                # one point per run: the epoch curves would show nothing
            index = self.metric_box.findData(metric)
            if index >= 0 and index != self.metric_box.currentIndex():
                self.metric_box.blockSignals(True)
                self.metric_box.setCurrentIndex(index)
                self.metric_box.blockSignals(False)
        self._draw_curves()
        self._draw_table()

    def variant_names(self) -> list[str]:
        s = self.snapshot
        return list(s.summary["variants_order"]) if s is not None and s.summary else []

    def _draw_curves(self) -> None:
        for item in self.items:
            self.plot.removeItem(item)
        self.items = []
        self.legend.clear()
        metric = self.metric_box.currentData()
        self.plot.setLabel("left", METRIC_LABELS[metric])
        s = self.snapshot
        curves = s.curves.get(metric, {}) if s is not None else {}
        scale = 100.0 if metric in PERCENT else 1.0
        drawn = 0
        for i, name in enumerate(self.variant_names()):
            c = curves.get(name)
            if c is None:
                continue
            ok = c["count"] > 0
            if not ok.any():
                continue
            n_seeds = int(c["count"].max())
            label = f"{name} ({n_seeds} seed{'s' if n_seeds != 1 else ''})"
            self.items += add_band(self.plot, c["steps"][ok], scale * c["min"][ok], scale * c["mean"][ok],
                                   scale * c["max"][ok], RUN_COLORS[i % len(RUN_COLORS)], label)
            drawn += 1
        if drawn:
            self.plot.enableAutoRange()
        # before any run: no 0..1 axes pretending to be data, a sentence saying what will appear
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setVisible(drawn > 0)
        self.empty_text.setVisible(drawn == 0)
        if drawn == 0:
            self.plot.getViewBox().setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
            self.empty_text.setPos(0.5, 0.5)
            self.empty_text.setTextWidth(max(200, self.plot_widget.width() - 60))
        self.legend.setVisible(drawn > 0)

    def _draw_table(self) -> None:
        s = self.snapshot
        summary = s.summary if s is not None else None
        if not summary:
            self.table.setRowCount(0)
            self.report.setText("" if s is None else html.escape(s.message))
            return
        metric = summary["metric"]
        pct = metric == "val_accuracy"
        short = metric.replace("val_", "validation ").replace("_", " ")
        target = summary.get("target")
        headers = ["variant", "seeds", f"final {short}", f"best {short}"]
        if target:
            headers.append(f"steps to {short} {target['value']:g}")
        headers += ["wall s", "same start", "gap to best", "seed spread", "p (paired t)", "verdict vs best"]
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        order = list(summary["ranking"])
        self.table.setRowCount(len(order))
        colors = {n: RUN_COLORS[i % len(RUN_COLORS)] for i, n in enumerate(summary["variants_order"])}
        bold = QFont()
        bold.setBold(True)
        for row, name in enumerate(order):
            v = summary["variants"][name]
            verdict = v["vs_best"]["verdict"]
            statuses = ", ".join(f"{k} {c}" for k, c in v["statuses"].items())
            cells = [name, f"{len(v['seeds'])} ({statuses})" if statuses else "0",
                     format_stat(v[f"final_{metric}"], pct), format_stat(v[f"best_{metric}"], pct)]
            if target:
                cells.append(format_steps_to_target(v["steps_to_target"]))
            wall = v["wall_seconds"]["mean"]
            cells += ["-" if not math.isfinite(wall) else f"{wall:.1f}",
                      "yes" if v["same_initial_weights_as_first"] else "no (other sizes or initializers)",
                      *gap_figures(summary, name), verdict]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if col == 0:
                    item.setForeground(QColor(colors[name]))
                    item.setFont(bold)
                if col == len(cells) - 1:
                    kind = verdict_kind(summary, name)   # the rule's colour: gap > spread, never the p-value
                    item.setForeground(QColor(VERDICT_COLORS[kind]))
                    if kind != "same":
                        item.setFont(bold)
                self.table.setItem(row, col, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setStretchLastSection(True)
        # every row visible without scrolling (up to 12 variants): the table is the result
        rows = min(len(order), 12)
        self.table.setMinimumHeight(header.height() + rows * self.table.verticalHeader().defaultSectionSize() + 6)
        notes = [f"<b>{summary['n_seeds']} seed{'s' if summary['n_seeds'] != 1 else ''}</b> "
                 f"{summary['seeds']}; ranked by the mean final {short} (the verdicts never use the best epoch "
                 "picked afterwards).", "<b>Rule:</b> " + html.escape(summary["rule"]) +
                 " Red = the rule says worse (gap &gt; spread); grey = not distinguishable. The paired t-test's "
                 "p is shown for reference: with few seeds it can be large while the gap beats the spread.",
                 html.escape(summary["caveat"])]
        self.report.setText("<br>".join(notes))

    def table_rows(self) -> list[list[str]]:
        """The table's text (tests)."""
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]
