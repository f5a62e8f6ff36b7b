"""The live time-series plots (panels 1-6).

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
from PySide6.QtGui import QBrush, QColor, QFont, QPen
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFrame, QGraphicsPathItem, QHBoxLayout, QLabel, QSizePolicy,
                               QVBoxLayout)

pg.setConfigOptions(antialias=False, background="w", foreground="#222", imageAxisOrder="row-major")

RUN_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
              "#7f7f7f", "#bcbd22"]
TRAIN_COLOR, VAL_COLOR = "#1f77b4", "#ff7f0e"
DIVERGED_COLOR = "#d00000"
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
    return plot.addLegend(offset=offset, labelTextSize="8pt", verSpacing=-6, brush=pg.mkBrush(255, 255, 255, 210),
                          pen=pg.mkPen("#ccc"))


SYMBOL_POINTS = 60   # epoch curves drop their markers beyond this many epochs (markers are dear)


def set_points(item: pg.PlotDataItem, x, y) -> None:
    """setData, with dots while a curve has too few points to draw a line."""
    few = len(x) < 3 and bool(np.isfinite(np.asarray(y, dtype=np.float64)).any())
    if few != (item.opts.get("symbol") is not None):
        item.setSymbol("o" if few else None)
        item.setSymbolSize(5)
        item.setSymbolBrush(item.opts["pen"].color() if hasattr(item.opts["pen"], "color") else None)
        item.setSymbolPen(None)
    item.setData(x, y)


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
            if log:
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
        target = nice_ceiling(max(x_hi * 1.05, 10))
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
            margin = 0.15 * span
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

    def sync(self, records: list, multi: bool, focus) -> None:
        """Redraw the runs in ``records`` whose data changed since the last call."""
        sig = (tuple(r.run_id for r in records), multi, self.mode_key())
        if sig != self._sig:
            self.reset()
            self._sig = sig
        changed = False
        for record in records:
            version = self.version_of(record)
            if self._versions.get(record.run_id) == version:
                continue
            self._versions[record.run_id] = version
            self.draw(record, multi, record.color if multi else None)
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

    def draw(self, record, multi: bool, color) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def after_sync(self, records, multi, focus, changed) -> None:
        pass

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


# ============================================================ per-layer plots

class LayerPanel(PlotPanel):
    """A curve per layer of a per-layer metric (one of StepMetrics' arrays)."""

    key = ""
    log_y = False
    y_label = ""
    y_fixed = None

    def __init__(self, title, help_text, parent=None):
        super().__init__(title, help_text, parent)
        self.plot = self.widget.getPlotItem()
        setup_plot(self.plot, "step", self.y_label, self.log_y)
        self.legend = add_legend(self.plot)
        self.follows = [Follow(self.plot, y_fixed=self.y_fixed)]

    def legends(self):
        return [self.legend]

    def layer_name(self, r, i, multi) -> str | None:
        if multi:
            return r.label if i == 0 else None
        layer = r.layers[i] if i < len(r.layers) else None
        return f"{layer.name} ({layer.activation})" if layer else f"layer {i + 1}"

    def draw(self, r, multi, color):
        values = r.per_layer[self.key].data
        if values.ndim != 2 or values.shape[0] == 0:
            return
        steps = r.log_step.data
        colors = layer_colors(values.shape[1], color)
        for i in range(values.shape[1]):
            column = values[:, i]
            if not np.isfinite(column).any():
                continue
            set_points(self.curve(self.plot, (r.run_id, i), self.layer_name(r, i, multi), colors[i]),
                       steps, positive(column) if self.log_y else column)
        self.diverged_marker(self.plot, r)


class GradNormPanel(LayerPanel):
    key, log_y, y_label = "grad_norm", True, "‖∂loss/∂W‖ (L2 norm)"

    def __init__(self, parent=None):
        super().__init__("3 · Gradient norm per layer", "L2 norm of each layer's kernel gradient, log scale. "
                         "Vanishing gradients: the lower layers' curves sit orders of magnitude below the "
                         "top ones (they barely learn). Exploding: curves shoot up.")


class DeadPanel(LayerPanel):
    key, y_label, y_fixed = "dead_fraction", "% of the layer's units", (0, 101)

    def __init__(self, parent=None):
        super().__init__("4 · Dead (ReLU) and saturated (logistic/tanh) units",
                         "Solid: % of a ReLU-family layer's units that output 0 for every example of a fixed "
                         "probe batch (dead units never recover). Dashed: % of logistic/tanh outputs within 1% "
                         "of their bounds (saturated: their gradient is nearly 0).")
        self._labels_at = 0.0

    def draw(self, r, multi, color):
        steps = r.log_step.data
        dead = r.per_layer["dead_fraction"].data
        sat = r.per_layer["saturated"].data
        if dead.ndim != 2 or not len(dead):
            return
        colors = layer_colors(dead.shape[1], color)
        for i in range(dead.shape[1]):
            for key, values, style in (("dead", dead, Qt.SolidLine), ("sat", sat, Qt.DashLine)):
                column = values[:, i]
                if not np.isfinite(column).any():
                    continue
                name = self.layer_name(r, i, multi) if not multi or i == 0 else None
                set_points(self.curve(self.plot, (r.run_id, key, i), name, colors[i], style=style), steps,
                           100 * column)
        self.diverged_marker(self.plot, r)
        now = time.monotonic()
        if not multi and (now - self._labels_at > 0.5 or r.finished):
            self._labels_at = now
            self._update_labels(r, dead, sat)

    def _update_labels(self, r, dead, sat) -> None:
        """Legend entries with the latest count: "layer 2 (relu): 5/32 dead"."""
        counts = r.per_layer["dead_count"].data
        by_item = {id(item): key for key, item in self.items.items()}
        for sample, label in self.legend.items:
            key = by_item.get(id(sample.item))
            if key is None or len(key) != 3:
                continue
            _, kind, i = key
            layer = r.layers[i] if i < len(r.layers) else None
            base = f"{layer.name} ({layer.activation})" if layer else f"layer {i + 1}"
            if kind == "dead":
                units = f"/{layer.units}" if layer and layer.units else ""
                count = counts[-1, i]
                text = f"{base}: {int(count) if math.isfinite(count) else 0}{units} dead"
            else:
                text = f"{base}: {100 * sat[-1, i]:.0f}% saturated"
            if label.text != text:
                label.setText(text)

    def after_sync(self, records, multi, focus, changed):
        if not changed:
            return
        any_data = any(r.per_layer["dead_fraction"].n and (np.isfinite(r.per_layer["dead_fraction"].data).any() or
                                                          np.isfinite(r.per_layer["saturated"].data).any())
                       for r in records)
        if not records:
            note = ""
        elif not any_data:
            note = "No ReLU-family or logistic/tanh hidden layer in the shown runs: nothing can die or saturate."
        elif all(np.nan_to_num(r.per_layer[k].data[-1:]).max(initial=0) == 0 for r in records
                 for k in ("dead_fraction", "saturated") if r.per_layer[k].n):
            note = "None so far: every unit still responds to some probe examples (lines at 0%)."
        else:
            note = ""
        self.set_note(note)


class BandItem(QGraphicsPathItem):
    """A filled mean +/- std band: one path, far cheaper than FillBetweenItem on every frame."""

    def __init__(self, color: QColor):
        super().__init__()
        self.setPen(QPen(Qt.NoPen))
        self.setBrush(QBrush(color))
        self.bounds = None

    def set_band(self, x, lo, hi) -> None:
        ok = np.isfinite(lo) & np.isfinite(hi)
        x, lo, hi = x[ok], lo[ok], hi[ok]
        if len(x) > BAND_POINTS:
            keep = np.linspace(0, len(x) - 1, BAND_POINTS).astype(int)
            x, lo, hi = x[keep], lo[keep], hi[keep]
        if len(x) < 2:
            return
        px = np.concatenate([x, x[::-1]]).astype(np.float64)
        py = np.concatenate([hi, lo[::-1]]).astype(np.float64)
        path = pg.arrayToQPath(px, py, connect="all", finiteCheck=False)
        path.closeSubpath()
        self.setPath(path)
        self.bounds = (float(x[-1]), float(lo.min()), float(hi.max()))


class ActivationPanel(LayerPanel):
    key, y_label = "act_mean", "layer output"

    def __init__(self, parent=None):
        super().__init__("5 · Activations per layer",
                         "Bands: mean ± standard deviation of each hidden layer's outputs on a fixed probe batch. "
                         "Heat map: histogram of one layer's pre-activations z over time (brighter = more "
                         "units there). Healthy deep nets keep similar spreads in every layer; SELU keeps "
                         "mean 0 and std 1.")
        self.mode = QComboBox()
        self.mode.setToolTip("What to show: bands for every layer, or one layer's pre-activation histogram")
        self.mode.addItem("mean ± std, all layers", -1)
        self.mode.currentIndexChanged.connect(lambda _i: self.reset_and_redraw())
        self.header.addWidget(self.mode)
        self.image = None
        self._n_layers = 0
        self._last_records = ([], False, None)
        self._heat_key = None

    def mode_key(self):
        return self.mode.currentData()

    def reset_and_redraw(self) -> None:
        self._sig = None
        records, multi, focus = self._last_records
        self.plot.setLabel("left", "pre-activation z" if self.heat_layer() is not None else "layer output")
        self.sync(records, multi, focus)
        self.follows[0].update(force=True, extra=self.extra_bounds(self.follows[0]))

    def heat_layer(self):
        layer = self.mode.currentData()
        return layer if layer is not None and layer >= 0 else None

    def reset(self):
        super().reset()
        if self.image is not None:
            self.plot.removeItem(self.image)
            self.image = None
        self._heat_key = None

    def extra_bounds(self, follow):
        if self.heat_layer() is not None and self.image is not None:
            return [self._image_bounds]
        return [item.bounds for key, item in self.items.items() if isinstance(item, BandItem) and item.bounds]

    def draw(self, r, multi, color):
        if self.heat_layer() is not None:
            return  # the heat map is drawn for the focus run in after_sync
        mean, std = r.per_layer["act_mean"].data, r.per_layer["act_std"].data
        if mean.ndim != 2 or not len(mean):
            return
        steps = r.log_step.data
        colors = layer_colors(mean.shape[1], color)
        for i in range(mean.shape[1] - 1):   # hidden layers (the output's values are probabilities/targets)
            band = self.items.get((r.run_id, "band", i))
            if band is None:
                fill = QColor(colors[i])
                fill.setAlpha(40 if not multi else 25)
                band = BandItem(fill)
                self.plot.addItem(band)
                self.items[(r.run_id, "band", i)] = band
            band.set_band(steps, mean[:, i] - std[:, i], mean[:, i] + std[:, i])
            set_points(self.curve(self.plot, (r.run_id, "mean", i), self.layer_name(r, i, multi), colors[i]),
                       steps, mean[:, i])
        self.diverged_marker(self.plot, r)

    def after_sync(self, records, multi, focus, changed):
        self._last_records = (records, multi, focus)
        n = len(focus.layers) - 1 if focus is not None else 0
        if n != self._n_layers:
            self._n_layers = n
            current = self.mode.currentData()
            self.mode.blockSignals(True)
            while self.mode.count() > 1:
                self.mode.removeItem(1)
            for i in range(max(0, n)):
                self.mode.addItem(f"histogram of z: layer {i + 1}", i)
            self.mode.setCurrentIndex(max(0, self.mode.findData(current)))
            self.mode.blockSignals(False)
        layer = self.heat_layer()
        if layer is None or focus is None:
            return
        heat = focus.heatmap
        key = (focus.run_id, len(heat.steps), heat.stride, layer)
        if len(heat.steps) < 2 or layer >= heat.shape[0] or key == self._heat_key:
            return
        self._heat_key = key
        counts = heat.layer(layer).astype(np.float64)
        peak = counts.max(axis=1, keepdims=True)
        img = np.divide(counts, peak, out=np.zeros_like(counts), where=peak > 0).T  # (bins, time)
        if self.image is None:
            self.image = pg.ImageItem()
            self.image.setColorMap(pg.colormap.get("viridis"))
            self.plot.addItem(self.image)
        edges = focus.histogram_edges
        steps = heat.steps.data
        from PySide6.QtCore import QRectF

        self.image.setImage(img, levels=(0, 1), autoLevels=False)
        rect = QRectF(float(steps[0]), float(edges[0]), float(max(1, steps[-1] - steps[0])),
                      float(edges[-1] - edges[0]))
        self.image.setRect(rect)
        self._image_bounds = (float(steps[-1]), float(edges[0]), float(edges[-1]))
        self.follows[0].update(extra=[self._image_bounds])


# ========================================================= update ratio and LR

class RatioPanel(PlotPanel):
    def __init__(self, parent=None):
        widget = pg.GraphicsLayoutWidget()
        widget.ci.setContentsMargins(2, 2, 2, 2)
        super().__init__("6 · Update/weight ratio · learning rate",
                         "Top: ‖ΔW‖ / ‖W‖ per step and layer, log scale; around 1e-3 is a common healthy value, "
                         "much higher means the learning rate is too high for that layer, much lower that it "
                         "barely learns. Bottom: the learning rate actually used (schedule or your change).",
                         plot_widget=widget)
        self.plot = widget.addPlot(row=0, col=0, axisItems={"left": LogAxis("left")})
        self.lr_plot = widget.addPlot(row=1, col=0)
        widget.ci.layout.setRowStretchFactor(0, 3)
        widget.ci.layout.setRowStretchFactor(1, 2)
        setup_plot(self.plot, "", "‖ΔW‖ / ‖W‖", log_y=True)
        setup_plot(self.lr_plot, "step", "learning rate")
        self.plot.hideAxis("bottom")
        self.legend = add_legend(self.plot)
        self.lr_legend = add_legend(self.lr_plot)
        self.reference = pg.InfiniteLine(pos=-3, angle=0, pen=pg.mkPen("#888", width=1, style=Qt.DotLine),
                                         label="1e-3", labelOpts={"color": "#666", "position": 0.92})
        self.plot.addItem(self.reference)
        self.follows = [Follow(self.plot), Follow(self.lr_plot, y_from_zero=True)]

    def legends(self):
        return [self.legend, self.lr_legend]

    def draw(self, r, multi, color):
        ratio = r.per_layer["update_ratio"].data
        steps = r.log_step.data
        if ratio.ndim == 2 and len(ratio):
            colors = layer_colors(ratio.shape[1], color)
            for i in range(ratio.shape[1]):
                column = ratio[:, i]
                if not np.isfinite(column).any():
                    continue
                name = (r.label if i == 0 else None) if multi else (r.layers[i].name if i < len(r.layers) else None)
                set_points(self.curve(self.plot, (r.run_id, i), name, colors[i]), steps, positive(column))
        set_points(self.curve(self.lr_plot, (r.run_id, "lr"), r.label if multi else "learning rate",
                              color or "#2ca02c", 2), steps, r.lr.data)
        self.diverged_marker(self.plot, r)
        self.diverged_marker(self.lr_plot, r)
