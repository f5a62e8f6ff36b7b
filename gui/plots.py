"""The live time-series plots: shared machinery and panels 1-2 (loss, accuracy).

Panels 3-6 (per layer) are in :mod:`gui.layer_plots`.

Every panel draws from :class:`gui.records.RunRecord` buffers on the
window's redraw timer (never per event): growing arrays, ``setData`` only for
runs whose ``version`` changed (epoch curves only when they grew),
``clipToView`` and peak downsampling on, thin pens.  Axes do not follow the
data every frame (regenerating tick labels is the dearest part of a
repaint): :class:`Follow` moves a view only when the data leave it, in round
steps, until the user zooms or pans (the "A" button resumes following).
All time plots use optimizer steps on x; the loss plot also has an epoch
axis on top.  They are not x-linked on purpose: pyqtgraph aligns linked
views by screen position, which shifts ranges between plots whose axes
differ in width.

One run shown: one colour per layer (dark blue = first hidden layer ...
orange = output).  Several runs checked: one colour per run, layers in
lighter shades of it.  A diverged run gets a red marker at the step it
diverged.
"""
from __future__ import annotations

import math
import time
from functools import lru_cache

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (QCheckBox, QFrame, QGraphicsItem, QGraphicsScene, QHBoxLayout, QLabel, QSizePolicy,
                               QVBoxLayout)

pg.setConfigOptions(antialias=False, background="w", foreground="#222", imageAxisOrder="row-major")

RUN_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
              "#7f7f7f", "#bcbd22"]
TRAIN_COLOR, VAL_COLOR = "#1f77b4", "#ff7f0e"
DIVERGED_COLOR = "#d00000"
PHASE_COLOR = "#6a3d9a"
_LAYER_MAP = pg.colormap.get("plasma")
BAND_POINTS = 1500        # mean +/- std bands are thinned to this many points


def run_color(index: int) -> str:
    return RUN_COLORS[index % len(RUN_COLORS)]


@lru_cache(maxsize=256)
def layer_colors(n: int, base: str | None = None) -> tuple:
    """Single run: dark blue (first layer) to orange (output). Overlay: shades of the run colour."""
    if base is not None:
        c = QColor(base)
        return tuple(c.lighter(100 + int(90 * i / max(1, n - 1))) if i else c for i in range(n))
    return tuple(_LAYER_MAP.map(0.05 + 0.8 * i / max(1, n - 1), mode="qcolor") for i in range(n))


def positive(values: np.ndarray) -> np.ndarray:
    """Non-positive values -> NaN (for log axes)."""
    out = np.array(values, dtype=np.float64, copy=True)
    out[~(out > 0)] = np.nan
    return out


def nice_ceiling(value: float) -> float:
    """The next of 1, 1.5, 2, 3, 4, 5, 6, 8 x 10^k at or above ``value``."""
    if not value > 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for m in (1, 1.5, 2, 3, 4, 5, 6, 8, 10):
        if m * 10 ** exponent >= value * (1 - 1e-9):
            return m * 10 ** exponent
    return 10 ** (exponent + 1)


def setup_plot(item: pg.PlotItem, x_label: str, y_label: str, log_y: bool = False) -> None:
    """Labels, clipping/downsampling, small tick font, no SI prefixes; axes are cached as
    pixmaps (redrawn only when their range changes, not with every curve update)."""
    item.setLabel("bottom", x_label)
    item.setLabel("left", y_label)
    item.setClipToView(True)
    item.setDownsampling(auto=True, mode="peak")
    item.setLogMode(y=log_y)
    font = QFont()
    font.setPointSize(8)
    for axis in ("bottom", "left", "top"):
        ax = item.getAxis(axis)
        ax.setTickFont(font)
        ax.enableAutoSIPrefix(False)
        ax.setCacheMode(QGraphicsItem.DeviceCoordinateCache)


class LogAxis(pg.AxisItem):
    """Plain log-scale labels, only at 1, 2 and 5 times a power of ten (no crowded minor labels)."""

    def logTickStrings(self, values, scale, spacing):
        out = []
        for v in values:
            x = 10.0 ** float(v) * scale
            if not math.isfinite(x) or x <= 0:
                out.append("")
                continue
            exponent = math.floor(math.log10(x) + 1e-9)
            mantissa = round(x / 10.0 ** exponent, 3)
            if mantissa not in (1.0, 2.0, 5.0):
                out.append("")
            elif -3 <= exponent <= 3:
                out.append(f"{x:.{max(0, -exponent)}f}")
            else:
                out.append(f"{mantissa:g}e{exponent}")
        return out


class EpochAxis(pg.AxisItem):
    """A top axis in epochs for an x axis in steps (ticks at round epochs)."""

    def __init__(self):
        super().__init__("top")
        self.steps_per_epoch = 1.0

    def tickValues(self, minVal, maxVal, size):
        s = self.steps_per_epoch
        levels = super().tickValues(minVal / s, maxVal / s, size)
        return [(spacing * s, [v * s for v in values]) for spacing, values in levels]

    def tickStrings(self, values, scale, spacing):
        s = self.steps_per_epoch
        return super().tickStrings([v / s for v in values], scale, spacing / s)


def add_legend(plot: pg.PlotItem, offset=(-4, 4)) -> pg.LegendItem:
    legend = plot.addLegend(offset=offset, labelTextSize="8pt", verSpacing=-6, brush=pg.mkBrush(255, 255, 255, 210),
                            pen=pg.mkPen("#ccc"))
    legend.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
    return legend


SYMBOL_POINTS = 60   # epoch curves drop their markers beyond this many epochs (markers are dear)


class LightCurve(pg.PlotCurveItem):
    """A per-layer curve: a bare PlotCurveItem (these curves hold hundreds of
    points, so PlotDataItem's clipping and downsampling machinery only costs
    time on every setData), with dots while it has too few points for a line.
    On a log-y plot the caller's values are stored as log10 (PlotCurveItem has
    no log mode of its own)."""

    def __init__(self, pen, name, log: bool):
        super().__init__(pen=pen, name=name, connect="finite")
        self.log = log
        self.dots = None

    def set_points(self, x, y) -> None:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if self.log:
            with np.errstate(divide="ignore", invalid="ignore"):
                y = np.where(y > 0, np.log10(y), np.nan)
        self.setData(x, y)
        if len(x) < 3:
            finite = np.isfinite(y)
            if self.dots is None:
                self.dots = pg.ScatterPlotItem(size=5, pen=None, brush=self.opts["pen"].color())
                self.dots.setParentItem(self)
            self.dots.setData(x[finite], y[finite])
            self.dots.setVisible(bool(finite.any()))
        elif self.dots is not None and self.dots.isVisible():
            self.dots.setVisible(False)   # hidden items cost nothing per frame


def set_if_grown(item: pg.PlotDataItem, x, y) -> None:
    """setData only when the (append-only) data grew: epoch curves change once an epoch."""
    n = len(x)
    if getattr(item, "_descent_n", -1) != n:
        item._descent_n = n
        if n > SYMBOL_POINTS and item.opts.get("symbol") is not None:
            item.setSymbol(None)
        item.setData(x, y)


class Follow:
    """Keeps a view around its data without moving the axes on every frame.

    The x range grows to round numbers of steps (1, 2, 5 x 10^k) as the run
    advances; the y range expands with some headroom when the data leave it
    and shrinks when they use less than a third of it.  A manual zoom or pan
    stops the following; the plot's "A" button resumes it.
    """

    def __init__(self, plot: pg.PlotItem, y_fixed: tuple | None = None, y_from_zero: bool = False,
                 y_limits: tuple | None = None):
        self.plot, self.vb = plot, plot.getViewBox()
        self.y_fixed = y_fixed
        self.y_limits = y_limits
        self.y_from_zero = y_from_zero
        self.x_cap = 0
        self.following = True
        self.vb.disableAutoRange()
        self.vb.sigRangeChangedManually.connect(self._manual)
        if plot.autoBtn is not None:
            plot.autoBtn.clicked.connect(self.follow)
        if y_fixed is not None or y_limits is not None:
            self.vb.setYRange(*(y_fixed or y_limits), padding=0)
        self.vb.setXRange(0, 100, padding=0)

    def _manual(self, *_args) -> None:
        self.following = False

    def follow(self) -> None:
        self.following = True
        self.vb.disableAutoRange()
        self.vb.setXRange(0, 100, padding=0)
        self.update(force=True)

    @staticmethod
    def _item_bounds(item, log: bool):
        """(x max, y min, y max) of an item's data, updated from the new tail only
        (the curves are append-only; a shorter array or another scale starts over)."""
        x, y = item.xData, item.yData
        n = len(x)
        cache = getattr(item, "_descent_bounds", None)
        if cache is None or cache[0] > n or cache[1] != log:
            cache = (0, log, -math.inf, math.inf, -math.inf)
        start, _, x_hi, y_lo, y_hi = cache
        if n > start:
            tail = np.asarray(y[start:], dtype=np.float64)
            if log and not isinstance(item, LightCurve):   # LightCurves hold log10 values already
                with np.errstate(divide="ignore", invalid="ignore"):
                    tail = np.log10(tail)
            tail = tail[np.isfinite(tail)]
            x_hi = max(x_hi, float(np.nanmax(x[start:])))
            if len(tail):
                y_lo, y_hi = min(y_lo, float(tail.min())), max(y_hi, float(tail.max()))
        item._descent_bounds = (n, log, x_hi, y_lo, y_hi)
        return x_hi, y_lo, y_hi

    def _bounds(self, extra=()):
        log = self.plot.getAxis("left").logMode
        x_hi, y_lo, y_hi = -math.inf, math.inf, -math.inf
        for item in self.plot.listDataItems():
            if item.xData is None or not len(item.xData) or not item.isVisible():
                continue
            ix, ilo, ihi = self._item_bounds(item, log)
            x_hi, y_lo, y_hi = max(x_hi, ix), min(y_lo, ilo), max(y_hi, ihi)
        for bx, blo, bhi in extra:
            x_hi, y_lo, y_hi = max(x_hi, bx), min(y_lo, blo), max(y_hi, bhi)
        if not (y_lo <= y_hi):   # only x extents (markers): no y information
            y_lo = y_hi = math.nan
        return x_hi, y_lo, y_hi

    def update(self, force: bool = False, extra=()) -> None:
        if not self.following:
            return
        x_hi, y_lo, y_hi = self._bounds(extra)
        if not math.isfinite(x_hi):
            return
        (cx0, cx1), (cy0, cy1) = self.vb.viewRange()
        target = nice_ceiling(max(x_hi * 1.3, 10))   # headroom: the axes change every ~30% of growth
        if self.x_cap >= x_hi:           # never beyond the planned end of the shown runs
            target = min(target, self.x_cap)
        if force or x_hi > cx1 or target < cx1 / 3 or (target < cx1 and target == self.x_cap):
            self.vb.setXRange(0, target, padding=0)
        if self.y_fixed is not None or not (math.isfinite(y_lo) and math.isfinite(y_hi)):
            return
        if self.y_from_zero:
            y_lo = min(0.0, y_lo)
        span = y_hi - y_lo
        if span <= 1e-12 * max(1.0, abs(y_hi)):   # constant data: a band around it
            span = abs(y_hi) if y_hi else 1.0
            y_lo, y_hi = y_lo - span / 2, y_hi + span / 2
        if force or y_lo < cy0 or y_hi > cy1 or span < (cy1 - cy0) / 3:
            margin = 0.25 * span
            lo, hi = y_lo - (0 if self.y_from_zero else margin), y_hi + margin
            if self.y_limits is not None:
                lo, hi = max(lo, self.y_limits[0]), min(hi, self.y_limits[1])
            self.vb.setYRange(lo, hi, padding=0)


class PlotPanel(QFrame):
    """A titled plot (or layout of plots) with a help tooltip and an optional note line."""

    def __init__(self, title: str, help_text: str, parent=None, plot_widget=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.StyledPanel)
        self.title = QLabel(f"<b>{title}</b>")
        self.title.setToolTip(help_text)
        self.title.setMinimumWidth(40)
        self.title.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.help = QLabel("?")
        self.help.setToolTip(help_text)
        self.help.setAlignment(Qt.AlignCenter)
        self.help.setFixedSize(15, 15)
        self.help.setStyleSheet("QLabel { color: white; background: #5b7fb8; border-radius: 7px; "
                                "font-weight: bold; font-size: 8pt; }")
        self.header = QHBoxLayout()
        self.header.setContentsMargins(4, 2, 4, 0)
        self.header.addWidget(self.title, 1)
        self.header.addWidget(self.help)
        self.note = QLabel()
        self.note.setStyleSheet("color: #666; padding-left: 4px;")
        # no word wrap: a wrapping label's height-for-width upsets the grid's row heights
        self.note.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        self.note.hide()
        self.widget = plot_widget if plot_widget is not None else pg.PlotWidget(axisItems={"left": LogAxis("left")})
        if isinstance(self.widget, pg.GraphicsView):
            # curves change shape on every frame: keeping a BSP index of them costs more than it saves
            self.widget.scene().setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 1, 1, 1)
        layout.setSpacing(0)
        layout.addLayout(self.header)
        layout.addWidget(self.note)
        layout.addWidget(self.widget, 1)
        self._sig = None
        self._versions: dict[int, int] = {}
        self.items: dict[tuple, object] = {}
        self.follows: list[Follow] = []

    def set_note(self, text: str) -> None:
        if text != self.note.text():
            self.note.setText(text)
            self.note.setToolTip(text)
            self.note.setVisible(bool(text))

    # -- incremental drawing -------------------------------------------------------------------

    max_rate = None   # redraws per second at most (None: every tick of the window's timer)
    pending = False   # a rate-limited tick left a change undrawn

    def sync(self, records: list, multi: bool, focus, force: bool = True) -> None:
        """Redraw the runs in ``records`` whose data changed since the last call
        (``force=False``: a panel with ``max_rate`` may leave it to a later tick)."""
        sig = (tuple(r.run_id for r in records), multi, self.mode_key())
        if sig != self._sig:
            self.reset()
            self._sig = sig
        elif not force and self.max_rate and time.monotonic() - getattr(self, "_drawn_at", 0.0) < 1.0 / self.max_rate:
            self.pending = True   # drawn recently: a later tick picks the change up
            return
        self.pending = False
        self._drawn_at = time.monotonic()
        changed = False
        for record in records:
            version = self.version_of(record)
            if self._versions.get(record.run_id) == version:
                continue
            self._versions[record.run_id] = version
            self.draw(record, multi, record.color if multi else None)
            self.phase_markers(record)
            changed = True
        self.after_sync(records, multi, focus, changed)
        for legend in self.legends():
            visible = bool(legend.items)
            if legend.isVisible() != visible:
                legend.setVisible(visible)
        if changed:
            cap = max((r.total_steps for r in records), default=0)
            diverged = [(float(r.diverged_step), math.inf, -math.inf) for r in records if r.diverged_step]
            for follow in self.follows:
                follow.x_cap = cap
                follow.update(extra=self.extra_bounds(follow) + diverged)

    def mode_key(self):
        return None

    def version_of(self, record):
        """What this panel draws changed when this changed (per-layer panels: new diagnostics)."""
        return record.step_version

    def extra_bounds(self, follow: Follow) -> list:
        return []

    def reset(self) -> None:
        plots = [follow.plot for follow in self.follows]
        for item in self.items.values():
            for plot in plots:   # PlotItem.removeItem also forgets data items and legend entries
                if item in plot.items:
                    plot.removeItem(item)
                    break
            else:
                if item.scene() is not None:
                    item.scene().removeItem(item)
        self.items = {}
        self._versions = {}
        for legend in self.legends():
            legend.clear()
        for follow in self.follows:
            if follow.following:
                follow.vb.setXRange(0, 100, padding=0)

    def legends(self) -> list:
        return []

    def draw(self, record, multi: bool, color) -> None:
        """Draw ``record``'s curves (``color``: the run's, when several runs are overlaid).
        Nothing by default: a panel that overrides ``sync`` (the predictions) has no curves."""

    def after_sync(self, records, multi, focus, changed) -> None:
        pass

    def light(self, plot: pg.PlotItem, key: tuple, name: str | None, color, width: float = 1,
              style=Qt.SolidLine) -> LightCurve:
        """The LightCurve for ``key``, created the first time."""
        item = self.items.get(key)
        if item is None:
            item = LightCurve(pg.mkPen(color, width=width, style=style), name, plot.getAxis("left").logMode)
            plot.addItem(item)
            self.items[key] = item
        return item

    def curve(self, plot: pg.PlotItem, key: tuple, name: str | None, color, width: float = 1,
              style=Qt.SolidLine, symbol=None) -> pg.PlotDataItem:
        """The item for ``key``, created (with its pen) the first time."""
        item = self.items.get(key)
        if item is None:
            pen = pg.mkPen(color, width=width, style=style)
            item = pg.PlotDataItem(pen=pen, symbol=symbol, symbolSize=5, symbolPen=None,
                                   symbolBrush=QColor(color) if symbol else None, connect="finite", name=name)
            plot.addItem(item)
            self.items[key] = item
        return item

    label_phases = False   # the loss and accuracy plots name the phases; the rest only draw the lines

    def phase_markers(self, record) -> None:
        """A dotted line where each later phase of a staged run starts (e.g. frozen | unfrozen),
        on every plot of the panel."""
        for i in range(1, len(record.phases)):
            step, name = record.phases[i]
            for follow in self.follows:
                key = (record.run_id, "phase", i, id(follow.plot))
                if key in self.items:
                    continue
                text = f"{record.phases[i - 1][1]} | {name}" if self.label_phases else None
                line = pg.InfiniteLine(pos=step, angle=90, pen=pg.mkPen(PHASE_COLOR, width=1.5, style=Qt.DotLine),
                                       label=text, labelOpts={"color": PHASE_COLOR, "position": 0.93,
                                                              "fill": (255, 255, 255, 220)})
                line.setToolTip(f"step {step:,}: phase '{name}' starts (new optimizer, layers frozen or "
                                "unfrozen as the experiment says)")
                follow.plot.addItem(line)
                self.items[key] = line

    def diverged_marker(self, plot: pg.PlotItem, record, label: bool = False) -> None:
        key = (record.run_id, "diverged", id(plot))
        if record.diverged_step is None or key in self.items:
            return
        line = pg.InfiniteLine(pos=record.diverged_step, angle=90,
                               pen=pg.mkPen(DIVERGED_COLOR, width=2, style=Qt.DashLine),
                               label=f"diverged at step {record.diverged_step}" if label else None,
                               labelOpts={"color": DIVERGED_COLOR, "position": 0.12, "fill": (255, 255, 255, 220), "anchors": [(1, 0), (1, 0)]})
        plot.addItem(line)
        self.items[key] = line


# ====================================================================== loss

class LossPanel(PlotPanel):
    label_phases = True

    def __init__(self, parent=None):
        self.epoch_axis = EpochAxis()
        widget = pg.PlotWidget(axisItems={"top": self.epoch_axis, "left": LogAxis("left")})
        super().__init__("1 · Loss", "Training loss of every step (light), its mean per epoch (dots) and the "
                         "validation loss after each epoch (dashed). Lower is better; a validation loss "
                         "rising while the training loss falls means overfitting.", plot_widget=widget)
        self.plot = widget.getPlotItem()
        self.plot.showAxis("top")
        setup_plot(self.plot, "step", "loss", log_y=True)
        self.plot.getAxis("top").setLabel("epoch")
        self.legend = add_legend(self.plot)
        self.follows = [Follow(self.plot)]
        self.log_box = QCheckBox("log scale")
        self.log_box.setChecked(True)
        self.log_box.setToolTip("Logarithmic loss axis: shows progress late in training")
        self.log_box.toggled.connect(self._log_toggled)
        self.header.addWidget(self.log_box)

    def _log_toggled(self, on: bool) -> None:
        self.plot.setLogMode(y=on)
        self.follows[0].update(force=True)

    def legends(self):
        return [self.legend]

    def version_of(self, record):
        return record.step_version, record.epoch_version

    def draw(self, r, multi, color):
        ep = r.epochs
        if not multi or not len(ep["step"]):   # comparing runs: epoch means only, the noise would hide them
            light = QColor(color or TRAIN_COLOR).lighter(165)
            light.setAlpha(110)
            self.curve(self.plot, (r.run_id, "step"), None if multi else "train (each step)", light) \
                .setData(r.loss_step.data, positive(r.loss.data))
        elif (r.run_id, "step") in self.items:
            self.items[(r.run_id, "step")].setVisible(False)
        set_if_grown(self.curve(self.plot, (r.run_id, "train"), r.label if multi else "train (epoch mean)",
                                color or "#0b4f8a", 2, symbol="o"), ep["step"].data, positive(ep["train_loss"].data))
        val = ep["val_loss"].data
        if np.isfinite(val).any():
            set_if_grown(self.curve(self.plot, (r.run_id, "val"), None if multi else "validation", color or VAL_COLOR,
                                    2, Qt.DashLine, symbol="s"), ep["step"].data, positive(val))
        self.diverged_marker(self.plot, r, label=True)

    def after_sync(self, records, multi, focus, changed):
        if focus is not None:
            self.epoch_axis.steps_per_epoch = max(1, focus.steps_per_epoch)
        self.set_note("solid: training loss (epoch mean) · dashed: validation" if multi else "")


# ================================================================== accuracy

class AccuracyPanel(PlotPanel):
    label_phases = True
    max_rate = 10   # epoch results: a tiny net at full speed finishes dozens of epochs a second

    def __init__(self, parent=None):
        super().__init__("2 · Accuracy", "Fraction of examples classified correctly, measured after each "
                         "epoch on the training set and on the validation set (not used for training).")
        self.plot = self.widget.getPlotItem()
        setup_plot(self.plot, "step", "accuracy (%)")
        self.legend = add_legend(self.plot, offset=(-4, -4))
        self.follows = [Follow(self.plot, y_limits=(0, 101))]

    def legends(self):
        return [self.legend]

    def version_of(self, record):
        return record.epoch_version, record.step_version if record.diverged_step else 0

    def draw(self, r, multi, color):
        ep = r.epochs
        set_if_grown(self.curve(self.plot, (r.run_id, "train"), r.label if multi else "train", color or TRAIN_COLOR,
                                2, symbol="o"), ep["step"].data, 100 * ep["train_accuracy"].data)
        set_if_grown(self.curve(self.plot, (r.run_id, "val"), None if multi else "validation", color or VAL_COLOR, 2,
                                Qt.DashLine, symbol="s"), ep["step"].data, 100 * ep["val_accuracy"].data)
        self.diverged_marker(self.plot, r)

    def after_sync(self, records, multi, focus, changed):
        regression = records and all(not r.is_classification for r in records)
        self.set_note("Accuracy applies to classification; this task is regression (see the loss)."
                      if regression else "solid: training · dashed: validation" if multi else "")
