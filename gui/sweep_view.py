"""A sweep in the Compare tab: the metric against the swept hyperparameter, the trials' table, and
the runs behind a point.

The Compare tab (:mod:`gui.compare`) runs an experiment with a ``sweep``
section through the job runner as it runs a comparison; on the training
thread a :class:`SweepSnapshots` watcher turns every finished run into the
summary so far (:func:`engine.jobs.sweep_report.summarize_sweep`, the one the
headless report writes), sent to the GUI thread as one immutable
:class:`SweepSnapshot`.  :class:`SweepView` only draws what the engine
computes (:func:`engine.jobs.sweep_report.sweep_plot_data`):

* *lines*: the metric against the swept number (a log axis where the space
  was log-spaced), one line per value of the other keys (per optimizer),
  each point a trial's mean over its seeds inside the band from its lowest
  to its highest seed; a red ring marks a trial that lost seeds (diverged),
  a trial that lost every seed has no point;
* *heat map*: two numeric keys, the mean in each cell (one panel per value of
  any other key, chosen in a box);
* *scatter*: random draws, points without lines (vertical bars: lowest to
  highest seed; two continuous keys: dots coloured by the mean).

Clicking a point (the nearest within a few pixels, or a cell) or a row of the
table selects that trial: the plot rings it, the table selects its row, and
the panel on the right draws each of its runs' validation curves, read from
the run folders (:func:`engine.jobs.sweep_report.trial_curves`).
"""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (QComboBox, QGraphicsRectItem, QHBoxLayout, QHeaderView, QLabel, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from engine.events import JobStarted, SweepFinished, SweepRecord
from engine.jobs.compare_report import format_stat
from engine.jobs.sweep_report import PLOT_METRICS, parameter_info, summarize_sweep, sweep_plot_data, trial_curves
from engine.spec.sweep import sweep_trials

from .plots import RUN_COLORS, LogAxis, add_legend, setup_plot
from .widgets.results import column, report_label, result_table, split

METRIC_LABELS = {"final_val_accuracy": "final validation accuracy (%)", "best_val_accuracy":
                 "best validation accuracy (%)", "final_val_loss": "final validation loss",
                 "best_val_loss": "best validation loss", "test_accuracy": "test accuracy (%)"}
CURVE_LABELS = {"val_accuracy": "validation accuracy (%)", "val_loss": "validation loss",
                "loss": "training loss (each diagnostics record)"}
PERCENT = ("final_val_accuracy", "best_val_accuracy", "test_accuracy", "val_accuracy")
MIN_EPOCHS = 3          # a quick look with fewer epochs: the trial's runs show their training loss instead
CLICK_PIXELS = 14       # a click selects the nearest point within this distance
LOST_COLOR = "#d00000"  # the ring of a trial that lost seeds
SELECTED_COLOR = "#000000"
VERDICT_COLORS = {"best": "#1b7a2a", "worse": "#a01010", "same": "#555555"}
HEAT_MAP = pg.colormap.get("viridis")
SYMBOLS = ("o", "s", "t", "d", "t1", "h", "star", "p")   # lines that coincide (momentum, Nesterov) stay apart
SEED_DASHES = (Qt.SolidLine, Qt.DashLine, Qt.DotLine, Qt.DashDotLine)   # a trial's runs, one per seed
TABLE_ROWS = 6          # rows the table shows at least


@dataclass(frozen=True)
class SweepSnapshot:
    """What the view draws: the engine's summary of the runs done so far."""
    folder: str
    done: int
    total: int
    summary: dict | None       # engine.jobs.sweep_report.summarize_sweep(...) (None before the first run ends)
    message: str
    finished: bool = False
    failed: bool = False


class SweepSnapshots:
    """Watches a sweep job on its training thread (see :class:`gui.worker.WorkerJob`) and turns its
    events into the snapshots the view draws, so the GUI thread never summarizes."""

    def __init__(self, experiment: dict, folder: str):
        self.experiment = experiment
        self.folder = folder
        self.trials = sweep_trials(experiment)
        self.records: list[dict] = []
        self.seeds: list = []

    def observe(self, event) -> list:
        if isinstance(event, JobStarted):
            self.seeds = list(event.seeds)
            return [SweepSnapshot(self.folder, 0, event.runs, None, f"training {event.runs} runs in {self.folder} ...")]
        if isinstance(event, SweepRecord):
            r = event.record
            self.records.append(r)
            summary = summarize_sweep(self.records, self.trials, self.experiment["sweep"], seeds=self.seeds,
                                      experiment=self.experiment["name"])
            return [SweepSnapshot(self.folder, event.done, event.total, summary,
                                  f"{r['variant']} seed {r['seed']}: {r['status']} ({r['wall_seconds']:.1f} s)")]
        if isinstance(event, SweepFinished):
            s, n = event.summary, len(self.records)
            return [SweepSnapshot(self.folder, n, n, s, f"done: {n} runs in {s['total_wall_seconds']:.0f} s on "
                                  f"{s['workers']} process{'es' if s['workers'] > 1 else ''}; written to {self.folder}",
                                  finished=True)]
        return []


def describe_sweep(exp: dict, seeds: int | None = None) -> str:
    """One line: what Run sweep is about to train."""
    cfg = exp["sweep"]
    n_seeds = seeds or len(cfg["seeds"])
    n_trials = cfg["trials"] if cfg["method"] == "random" else \
        math.prod(len(p["values"]) for p in parameter_info(cfg).values())
    keys = []
    for key, p in parameter_info(cfg).items():
        values = p["values"]
        if values is None:
            keys.append(f"{key} drawn from {p['space'].replace('_', '-')} {cfg['parameters'][key][p['space']]}")
        else:
            shown = ", ".join(_short(v) for v in values[:6]) + (", ..." if len(values) > 6 else "")
            keys.append(f"{key} ({len(values)}{' log-spaced' if p['log'] else ''}: {shown})")
    how = "random draws of" if cfg["method"] == "random" else "a grid over"
    return (f"a sweep: {n_trials} trials ({how} {'; '.join(keys)}) × {n_seeds} seeds = {n_trials * n_seeds} runs; "
            f"every trial of a seed starts from the same weights and sees the same batches")


def _short(v) -> str:
    return f"{v:.3g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else \
        v if isinstance(v, str) else json.dumps(v)


def _column(key: str) -> str:
    """A table header for a swept key: its last name ("learning_rate"), its section for a name
    ("optimizer" for optimizer.name)."""
    parts = key.split(".")
    return parts[-2] if parts[-1] == "name" and len(parts) > 1 else parts[-1]


def _values(seq, scale: float = 1.0) -> np.ndarray:
    """A list of numbers with None -> NaN, times ``scale``."""
    return scale * np.array([np.nan if v is None else v for v in seq], dtype=np.float64)


def _segments(ok: np.ndarray) -> list[slice]:
    """The runs of consecutive True in ``ok`` (a band is drawn per run: none across a missing point)."""
    out, start = [], None
    for i, flag in enumerate(list(ok) + [False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            out.append(slice(start, i))
            start = None
    return out


class SweepView(QWidget):
    """The sweep's plot, the trials' table and the selected trial's runs (see the module docstring)."""

    trial_selected = Signal(int)     # a trial was selected (a point or a row clicked, or select_trial)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.snapshot: SweepSnapshot | None = None
        self.data: dict | None = None        # the sweep_plot_data drawn
        self.points: list[tuple] = []        # (view x, view y, trial index) of every clickable point
        self.cells: dict = {}                # heat map: (column, row) -> trial index
        self.items: list = []
        self.selected: int | None = None
        self._set_up: str | None = None      # the folder whose metric and panels are chosen

        self.metric_box = QComboBox()
        for key in PLOT_METRICS:
            self.metric_box.addItem(METRIC_LABELS[key], key)
        self.metric_box.currentIndexChanged.connect(lambda _i: self._draw_plot())
        self.panel = QComboBox()
        self.panel.setToolTip("The heat map of one value of the other swept keys")
        self.panel.currentIndexChanged.connect(lambda _i: self._draw_plot())
        self.panel.hide()
        self.plot_widget = pg.PlotWidget(axisItems={"bottom": LogAxis("bottom")})
        self.plot = self.plot_widget.getPlotItem()
        setup_plot(self.plot, "", METRIC_LABELS["final_val_accuracy"])
        self.plot.setClipToView(False)        # a few dozen points: every one is drawn and clickable
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.legend = add_legend(self.plot, offset=(-4, 4))   # top right: where a sweep's unstable rates fail
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self.plot_note = QLabel()
        self.plot_note.setStyleSheet("color: #666;")
        head = QHBoxLayout()
        head.addWidget(QLabel("<b>The sweep</b>"))
        head.addWidget(self.metric_box)
        head.addWidget(self.panel)
        head.addWidget(self.plot_note, 1)
        self.trial_title = QLabel("Click a point or a row: its runs, one per seed")
        self.trial_title.setWordWrap(True)
        self.trial_title.setTextFormat(Qt.RichText)
        self.curves_widget = pg.PlotWidget()
        self.curves = self.curves_widget.getPlotItem()
        setup_plot(self.curves, "step", CURVE_LABELS["val_accuracy"])
        self.curves.showGrid(x=True, y=True, alpha=0.15)
        self.curves_legend = add_legend(self.curves, offset=(-4, -4))
        self.curve_items: list = []

        self.table = result_table()
        self.table.setSelectionBehavior(QTableWidget.SelectRows)
        self.table.setSelectionMode(QTableWidget.SingleSelection)
        self.table.cellClicked.connect(lambda row, _col: self.select_trial(self._row_trial(row)))
        self.report = report_label()
        top = split(column(head, (self.plot_widget, 1)), column(self.trial_title, (self.curves_widget, 1)),
                    Qt.Horizontal)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split(top, column((self.table, 1), self.report)), 1)

    # ------------------------------------------------------------------ snapshots

    @property
    def summary(self) -> dict | None:
        return self.snapshot.summary if self.snapshot is not None else None

    def show_snapshot(self, snap: SweepSnapshot) -> None:
        """Draw ``snap`` (a failure without a summary keeps what the runs so far showed)."""
        if snap.summary is None and self.snapshot is not None and self.snapshot.folder == snap.folder:
            snap = SweepSnapshot(snap.folder, snap.done, snap.total, self.snapshot.summary, snap.message,
                                 snap.finished, snap.failed)
        if self.snapshot is None or self.snapshot.folder != snap.folder:
            self.selected = None          # another sweep
        self.snapshot = snap
        if snap.summary is not None and self._set_up != snap.folder:    # its first summary: its metric, panels
            self._set_up = snap.folder
            self._choose_metric()
            self._fill_panels()
        self._draw_plot()
        self._draw_table()
        if self.selected is not None:
            self._draw_trial()

    def _choose_metric(self) -> None:
        """A new sweep: plot the metric its verdicts use."""
        index = self.metric_box.findData(f"final_{self.summary['metric']}")
        self.metric_box.blockSignals(True)
        self.metric_box.setCurrentIndex(max(0, index))
        self.metric_box.blockSignals(False)

    def _fill_panels(self) -> None:
        self.panel.blockSignals(True)
        self.panel.clear()
        data = self._plot_data()
        if data is not None and data["kind"] == "heatmap" and len(data["panels"]) > 1:
            for p in data["panels"]:
                self.panel.addItem(p["label"])
        self.panel.setVisible(self.panel.count() > 1)
        self.panel.blockSignals(False)

    def _plot_data(self) -> dict | None:
        try:
            return sweep_plot_data(self.summary, metric=self.metric_box.currentData())
        except ValueError:        # no swept key takes numbers: the table is the result
            return None

    # ------------------------------------------------------------------ the plot

    def _clear_plot(self) -> None:
        for item in self.items:
            self.plot.removeItem(item)
        self.items = []
        self.points = []
        self.cells = {}
        self.legend.clear()
        for axis in ("bottom", "left"):
            self.plot.getAxis(axis).setTicks(None)     # a heat map's value ticks

    def _draw_plot(self) -> None:
        self._clear_plot()
        self.data = None if self.summary is None else self._plot_data()
        data = self.data
        if data is None:
            self.plot_note.setText("" if self.summary is None else "no swept key takes numbers: see the table")
            self.legend.setVisible(False)
            return
        metric = data["metric"]
        x_label = data["x"] + (" (log scale)" if data["log_x"] else "")
        self.plot.setLabel("bottom", x_label)
        if data["kind"] == "heatmap":
            self.plot.setLogMode(x=False, y=False)
            self._draw_heatmap(data, metric)
        else:
            self.plot.setLogMode(x=data["log_x"], y=bool(data.get("log_y")) and data["kind"] == "scatter")
            self.plot.setLabel("left", METRIC_LABELS[metric] if data["kind"] == "lines" else data["y"])
            if data["kind"] == "lines":
                self._draw_lines(data, metric)
            else:
                self._draw_scatter(data, metric)
        self._draw_selection()
        if data["kind"] == "heatmap":      # exactly the cells (the selection's outline has no data bounds)
            panel = data["panels"][0]
            self.plot.setRange(xRange=(-0.5, len(panel["x_values"]) - 0.5),
                               yRange=(-0.5, len(panel["y_values"]) - 0.5), padding=0.02)
        else:
            self.plot.enableAutoRange()

    def _draw_lines(self, data: dict, metric: str) -> None:
        scale = 100.0 if metric in PERCENT else 1.0
        scatter = data["scatter"]
        for i, line in enumerate(data["lines"]):
            color = RUN_COLORS[i % len(RUN_COLORS)]
            x = np.asarray(line["x"], dtype=np.float64)
            mean, lo, hi = (_values(line[k], scale) for k in ("mean", "min", "max"))
            ok = np.isfinite(mean)
            if not ok.any():
                continue      # no result yet (a live sweep) or every seed lost: no line, no legend entry
            seeds = max(line["n"])
            label = f"{line['label']} ({seeds} seed{'s' if seeds != 1 else ''})"
            pen = None if scatter else pg.mkPen(color, width=2)
            main = pg.PlotDataItem(x, mean, pen=pen, connect="finite", name=label, symbol=SYMBOLS[i % len(SYMBOLS)],
                                   symbolSize=8, symbolPen=pg.mkPen(color), symbolBrush=QColor(color))
            main.setZValue(2)
            self._add(main)
            fill = QColor(color)
            fill.setAlpha(50)
            for part in _segments(ok & np.isfinite(lo) & np.isfinite(hi)):
                if scatter or part.stop - part.start < 2:     # no band to draw: a bar (in view coordinates)
                    bx = np.log10(x[part]) if data["log_x"] else x[part]
                    self._add(pg.ErrorBarItem(x=bx, y=mean[part], top=hi[part] - mean[part],
                                              bottom=mean[part] - lo[part], beam=0, pen=pg.mkPen(color, width=1)))
                    continue
                edges = [pg.PlotDataItem(x[part], edge[part], pen=pg.mkPen(None)) for edge in (lo, hi)]
                for edge in edges:
                    self._add(edge)
                self._add(pg.FillBetweenItem(edges[0], edges[1], brush=pg.mkBrush(fill)))
            lost = ok & (np.asarray(line["diverged"]) > 0)
            if lost.any():
                ring = pg.PlotDataItem(x[lost], mean[lost], pen=None, symbol="o", symbolSize=13,
                                       symbolPen=pg.mkPen(LOST_COLOR, width=2), symbolBrush=None)
                ring.setZValue(3)
                self._add(ring)
            vx = np.log10(x) if data["log_x"] else x
            self.points += [(vx[j], mean[j], line["trials"][j]) for j in np.flatnonzero(ok)]
        lost = sum(any(line["diverged"]) for line in data["lines"])
        self.plot_note.setText("point: mean over seeds · " + ("bar" if scatter else "band") +
                               ": lowest to highest seed" + (" · red ring: diverged on some seeds; no point: on "
                                                             "all" if lost else "") + " · click a point: its runs")
        self.legend.setVisible(bool(data["lines"]))

    def _draw_scatter(self, data: dict, metric: str) -> None:
        """Random draws over two continuous keys: a dot per trial, coloured by its mean."""
        panels = data["panels"]
        means = np.concatenate([_values(p["mean"]) for p in panels]) if panels else np.zeros(0)
        lo, hi = self._levels(means, data["higher_is_better"])
        for p in panels:
            x, y, mean = np.asarray(p["x"], float), np.asarray(p["y"], float), _values(p["mean"])
            brushes = [pg.mkBrush(self._color(m, lo, hi)) for m in mean]
            dots = pg.ScatterPlotItem(x=x, y=y, size=10, brush=brushes, pen=pg.mkPen("#333"))
            dots.setZValue(2)
            self._add(dots)
            vx = np.log10(x) if data["log_x"] else x
            vy = np.log10(y) if data.get("log_y") else y
            self.points += [(vx[j], vy[j], p["trials"][j]) for j in range(len(x))]
        self.plot_note.setText(f"colour: mean {METRIC_LABELS[metric]} from {self._fmt(lo, metric)} (dark) to "
                               f"{self._fmt(hi, metric)} (light); grey: no result · click a point: its runs")
        self.legend.setVisible(False)

    def _draw_heatmap(self, data: dict, metric: str) -> None:
        """Two numeric keys: one cell per (x value, y value), coloured by the mean, with its value."""
        panel = data["panels"][max(0, min(self.panel.currentIndex(), len(data["panels"]) - 1))]
        mean = np.array([[np.nan if v is None else v for v in row] for row in panel["mean"]], dtype=np.float64)
        lo, hi = self._levels(mean.ravel(), data["higher_is_better"])
        rgba = np.zeros(mean.shape + (4,), dtype=np.ubyte)
        for (i, j), m in np.ndenumerate(mean):
            c = QColor(self._color(m, lo, hi))
            rgba[i, j] = (c.red(), c.green(), c.blue(), c.alpha())
        image = pg.ImageItem(rgba, axisOrder="row-major")
        image.setRect(QRectF(-0.5, -0.5, mean.shape[1], mean.shape[0]))
        self._add(image)
        xs, ys = panel["x_values"], panel["y_values"]
        for (i, j), m in np.ndenumerate(mean):
            trial = panel["trials"][i][j]
            if trial is None:
                continue
            self.cells[(j, i)] = trial
            text = "div" if not math.isfinite(m) and panel["diverged"][i][j] else self._fmt(m, metric)
            dark = math.isfinite(m) and self._fraction(m, lo, hi) < 0.6
            label = pg.TextItem(text, color="w" if dark else "k", anchor=(0.5, 0.5))
            label.setPos(j, i)
            self._add(label)
        self.plot.getAxis("bottom").setTicks([[(j, _short(v)) for j, v in enumerate(xs)]])
        self.plot.getAxis("left").setTicks([[(i, _short(v)) for i, v in enumerate(ys)]])
        self.plot.setLabel("left", data["y"] + (" (log-spaced)" if data["log_y"] else ""))
        self.plot.setLabel("bottom", data["x"] + (" (log-spaced)" if data["log_x"] else ""))
        self.plot_note.setText(f"cell: mean {METRIC_LABELS[metric]} over seeds ({self._fmt(lo, metric)} dark to "
                               f"{self._fmt(hi, metric)} light; div: every seed diverged) · click a cell: its runs")
        self.legend.setVisible(False)

    def _levels(self, values: np.ndarray, higher: bool) -> tuple[float, float]:
        finite = values[np.isfinite(values)]
        if not finite.size:
            return 0.0, 1.0
        lo, hi = float(finite.min()), float(finite.max())
        return (lo, hi) if higher else (hi, lo)     # "light" is always the better end

    @staticmethod
    def _fraction(value: float, lo: float, hi: float) -> float:
        """Where ``value`` lies from ``lo`` (0, dark) to ``hi`` (1, light)."""
        return 0.5 if hi == lo else float(np.clip((value - lo) / (hi - lo), 0, 1))

    def _color(self, value: float, lo: float, hi: float) -> QColor:
        if not math.isfinite(value):
            return QColor(200, 200, 200, 160)
        return HEAT_MAP.map(self._fraction(value, lo, hi), mode="qcolor")

    @staticmethod
    def _fmt(value: float, metric: str) -> str:
        if not math.isfinite(value):
            return "-"
        return f"{value * 100:.1f}" if metric in PERCENT else f"{value:.3g}"

    def _add(self, item) -> None:
        self.plot.addItem(item)
        self.items.append(item)

    def _draw_selection(self) -> None:
        if self.selected is None:
            return
        if self.cells:
            where = [(c, r) for (c, r), t in self.cells.items() if t == self.selected]
        else:
            where = [(vx, vy) for vx, vy, t in self.points if t == self.selected]
        if not where:
            return
        vx, vy = where[0]
        if self.cells:                                   # the cell's outline
            pen = pg.mkPen(SELECTED_COLOR, width=3)
            pen.setCosmetic(True)
            ring = QGraphicsRectItem(QRectF(vx - 0.5, vy - 0.5, 1, 1))
            ring.setPen(pen)
        else:                                            # PlotDataItems take data, not view coordinates
            vx = 10 ** vx if self.data["log_x"] else vx
            vy = 10 ** vy if self.data.get("log_y") and self.data["kind"] == "scatter" else vy
            ring = pg.PlotDataItem([vx], [vy], pen=None, symbol="o", symbolSize=18, symbolBrush=None,
                                   symbolPen=pg.mkPen(SELECTED_COLOR, width=2))
        ring.setZValue(4)
        self._add(ring)

    # ------------------------------------------------------------------ selecting a trial

    def _clicked(self, event) -> None:
        if event.button() != Qt.LeftButton or not self.plot.sceneBoundingRect().contains(event.scenePos()):
            return
        trial = self.trial_at(event.scenePos())
        if trial is not None:
            self.select_trial(trial)

    def trial_at(self, scene_pos: QPointF) -> int | None:
        """The trial under a scene position: the heat map's cell, else the nearest point within
        CLICK_PIXELS."""
        vb = self.plot.getViewBox()
        view = vb.mapSceneToView(scene_pos)
        if self.cells:
            return self.cells.get((round(view.x()), round(view.y())))
        best, nearest = None, float(CLICK_PIXELS)
        for vx, vy, trial in self.points:
            p = vb.mapViewToScene(QPointF(vx, vy))
            d = math.hypot(p.x() - scene_pos.x(), p.y() - scene_pos.y())
            if d <= nearest:
                best, nearest = trial, d
        return best

    def point_scene_pos(self, trial: int) -> QPointF | None:
        """Where a trial's point (or cell) is drawn, in scene coordinates (tests, scripts)."""
        vb = self.plot.getViewBox()
        if self.cells:
            return next((vb.mapViewToScene(QPointF(c, r)) for (c, r), t in self.cells.items() if t == trial), None)
        return next((vb.mapViewToScene(QPointF(vx, vy)) for vx, vy, t in self.points if t == trial), None)

    def select_trial(self, trial: int | None) -> None:
        """Ring the trial in the plot, select its row, draw its runs."""
        if trial is None or self.summary is None or not 0 <= trial < len(self.summary["trials"]):
            return
        self.selected = trial
        self._draw_plot()
        for row in range(self.table.rowCount()):
            if self._row_trial(row) == trial:
                self.table.blockSignals(True)
                self.table.selectRow(row)
                self.table.blockSignals(False)
        self._draw_trial()
        self.trial_selected.emit(trial)

    def _row_trial(self, row: int) -> int | None:
        item = self.table.item(row, 0)
        return None if item is None else item.data(Qt.UserRole)

    def _draw_trial(self) -> None:
        """The selected trial's runs, one curve per seed, read from the run folders."""
        for item in self.curve_items:
            self.curves.removeItem(item)
        self.curve_items = []
        self.curves_legend.clear()
        s = self.summary
        entry = s["trials"][self.selected]
        metric = s["metric"]
        found = trial_curves(self.snapshot.folder, s, self.selected, (metric, "loss"))
        if found[metric] and max(len(c[0]) for c in found[metric].values()) < MIN_EPOCHS and found["loss"]:
            metric = "loss"      # a quick look of one or two epochs: the per-record training loss shows more
        scale = 100.0 if metric in PERCENT else 1.0
        self.curves.setLabel("left", CURVE_LABELS[metric])
        color = self._trial_color(entry)
        for k, (seed, (steps, values)) in enumerate(sorted(found[metric].items())):
            pen = pg.mkPen(color, width=2, style=SEED_DASHES[k % len(SEED_DASHES)])
            item = self.curves.plot(np.asarray(steps, float), scale * np.asarray(values, float), name=f"seed {seed}",
                                    pen=pen, connect="finite")
            self.curve_items.append(item)
        self.curves.enableAutoRange()
        f = entry[f"final_{s['metric']}"]
        params = ", ".join(f"{k}={_short(v)}" for k, v in entry["params"].items())
        runs = ", ".join(f"{k} {c}" for k, c in entry["statuses"].items()) or "not run yet"
        stat = format_stat(f, s["metric"] == "val_accuracy")
        self.trial_title.setText(f"<b>{html.escape(entry['name'])}</b> ({html.escape(params)}): final "
                                 f"{html.escape(s['metric'])} {html.escape(stat)}; runs: {html.escape(runs)}; "
                                 f"rank {entry.get('rank', '-')}")

    def _trial_color(self, entry: dict) -> str:
        if self.data is not None and self.data["kind"] == "lines":
            for i, line in enumerate(self.data["lines"]):
                if entry["index"] in line["trials"]:
                    return RUN_COLORS[i % len(RUN_COLORS)]
        return RUN_COLORS[0]

    # ------------------------------------------------------------------ the table

    def _draw_table(self) -> None:
        s = self.summary
        if s is None:
            self.table.setRowCount(0)
            self.report.setText("" if self.snapshot is None else html.escape(self.snapshot.message))
            return
        metric = s["metric"]
        pct = metric == "val_accuracy"
        keys = list(s["parameters"])
        headers = ["rank", "trial", *(_column(k) for k in keys), "seeds",
                   f"final {metric} (mean ± std)", "lowest .. highest seed", "wall s", "verdict vs best"]
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        for col, key in enumerate(keys, 2):
            self.table.horizontalHeaderItem(col).setToolTip(key)
        colors = {}
        if self.data is not None and self.data["kind"] == "lines":
            colors = {t: RUN_COLORS[i % len(RUN_COLORS)] for i, line in enumerate(self.data["lines"])
                      for t in line["trials"]}
        bold = QFont()
        bold.setBold(True)
        self.table.setRowCount(len(s["ranking"]))
        for row, index in enumerate(s["ranking"]):
            e = s["trials"][index]
            f = e[f"final_{metric}"]
            statuses = ", ".join(f"{k} {c}" for k, c in e["statuses"].items())
            span = "-" if not f["n"] else (f"{f['min'] * 100:.2f} .. {f['max'] * 100:.2f}" if pct
                                           else f"{f['min']:.4f} .. {f['max']:.4f}")
            wall = e["wall_seconds"]["mean"]
            cells = [str(e["rank"]), e["name"], *(_short(e["params"][k]) for k in keys),
                     f"{e['runs_done']} ({statuses})" if statuses else "0", format_stat(f, pct), span,
                     "-" if not math.isfinite(wall) else f"{wall:.1f}", e["vs_best"]["verdict"]]
            kind = "best" if index == s["best"] else "worse" if e["vs_best"].get("distinguishable") or \
                not e["with_result"] else "same"
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                item.setData(Qt.UserRole, index)
                if col == 1:
                    item.setForeground(QColor(colors.get(index, "#000")))
                    item.setFont(bold)
                if col == len(cells) - 1:
                    item.setForeground(QColor(VERDICT_COLORS[kind]))
                    if kind == "best":
                        item.setFont(bold)
                self.table.setItem(row, col, item)
            if index == self.selected:
                self.table.blockSignals(True)
                self.table.selectRow(row)
                self.table.blockSignals(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setStretchLastSection(True)
        rows = min(len(s["ranking"]), TABLE_ROWS)
        self.table.setMinimumHeight(header.height() + rows * self.table.verticalHeader().defaultSectionSize() + 6)
        tied = [s["trials"][i]["name"] for i in s["not_distinguishable_from_best"] if i != s["best"]]
        best = s["trials"][s["best"]]["name"] if s["best"] is not None else None
        notes = [f"<b>{s['n_trials']} trials × {s['n_seeds']} seed{'s' if s['n_seeds'] != 1 else ''}</b> "
                 f"{s['seeds']}; ranked by the mean final {html.escape(metric)}. "
                 + (f"Best mean: <b>{html.escape(best)}</b>; not distinguishable from it: "
                    f"{len(tied)} trial{'s' if len(tied) != 1 else ''}." if best else "No trial has a result yet."),
                 "<b>Rule:</b> " + html.escape(s["rule"]), html.escape(s["divergence_rule"]).capitalize() + ".",
                 html.escape(s["caveat"])]
        self.report.setText("<br>".join(notes))

    def table_rows(self) -> list[list[str]]:
        """The table's text (tests)."""
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]


def sweep_folder(folder: str | Path) -> bool:
    """Whether ``folder`` holds a sweep's summary (sweep.json) rather than a comparison's."""
    return (Path(folder) / "sweep.json").is_file()
