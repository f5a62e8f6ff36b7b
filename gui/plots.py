"""The live plots.

Every panel draws from :class:`gui.records.RunRecord` buffers on the
window's redraw timer (never per event): growing arrays, ``setData`` only
for runs whose ``version`` changed, ``clipToView`` and peak downsampling on,
thin pens.  All time plots share the x axis (optimizer steps; the loss plot
also has an epoch axis on top).

One run shown: one colour per layer (dark blue = first hidden layer ...
red = output).  Several runs checked: one colour per run, layers in lighter
shades of it.  A diverged run gets a red marker at the step it diverged.
The time plots are not x-linked on purpose: pyqtgraph aligns linked views by
screen position, which shifts ranges between plots with different axis widths.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QCheckBox, QComboBox, QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

pg.setConfigOptions(antialias=False, background="w", foreground="#222", imageAxisOrder="row-major")

RUN_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
              "#7f7f7f", "#bcbd22"]
TRAIN_COLOR, VAL_COLOR = "#1f77b4", "#ff7f0e"
DIVERGED_COLOR = "#d00000"
_LAYER_MAP = pg.colormap.get("plasma")


def run_color(index: int) -> str:
    return RUN_COLORS[index % len(RUN_COLORS)]


def layer_colors(n: int, base: str | None = None) -> list[QColor]:
    """Single run: dark blue (first layer) to orange (output). Overlay: shades of the run colour."""
    if base is not None:
        c = QColor(base)
        return [c.lighter(100 + int(90 * i / max(1, n - 1))) if i else c for i in range(n)]
    return [_LAYER_MAP.map(0.05 + 0.8 * i / max(1, n - 1), mode="qcolor") for i in range(n)]


def positive(values: np.ndarray) -> np.ndarray:
    """Non-positive values -> NaN (for log axes)."""
    out = np.array(values, dtype=np.float64, copy=True)
    out[~(out > 0)] = np.nan
    return out


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


def add_legend(plot: pg.PlotItem, offset=(-4, 4)) -> pg.LegendItem:
    return plot.addLegend(offset=offset, labelTextSize="8pt", verSpacing=-6, brush=pg.mkBrush(255, 255, 255, 210),
                          pen=pg.mkPen("#ccc"))


def set_if_grown(item: pg.PlotDataItem, x, y) -> None:
    """setData only when the (append-only) data grew: epoch curves change once an epoch."""
    n = len(x)
    if getattr(item, "_descent_n", -1) != n:
        item._descent_n = n
        item.setData(x, y)


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


class PlotPanel(QFrame):
    """A titled plot (or layout of plots) with a help tooltip and an optional note line."""

    def __init__(self, title: str, help_text: str, parent=None, plot_widget: QWidget | None = None):
        super().__init__(parent)
        self.setFrameShape(QFrame.StyledPanel)
        self.title = QLabel(f"<b>{title}</b>")
        self.title.setToolTip(help_text)
        self.help = QLabel("?")
        self.help.setToolTip(help_text)
        self.help.setAlignment(Qt.AlignCenter)
        self.help.setFixedSize(15, 15)
        self.help.setStyleSheet("QLabel { color: white; background: #5b7fb8; border-radius: 7px; "
                                "font-weight: bold; font-size: 8pt; }")
        self.header = QHBoxLayout()
        self.header.setContentsMargins(4, 2, 4, 0)
        self.header.addWidget(self.title)
        self.header.addWidget(self.help)
        self.header.addStretch(1)
        self.note = QLabel()
        self.note.setStyleSheet("color: #666; padding-left: 4px;")
        self.note.setWordWrap(True)
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
        self.items: dict[tuple, pg.GraphicsObject] = {}

    def set_note(self, text: str) -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))

    @staticmethod
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

    # -- incremental drawing -------------------------------------------------------------------

    def sync(self, records: list, multi: bool, focus) -> None:
        """Redraw the runs in ``records`` whose data changed since the last call."""
        sig = (tuple(r.run_id for r in records), multi, self.mode_key())
        if sig != self._sig:
            self.reset()
            self._sig = sig
        for index, record in enumerate(records):
            if self._versions.get(record.run_id) == record.version:
                continue
            self._versions[record.run_id] = record.version
            self.draw(record, multi, record.color if multi else None)
        self.after_sync(records, multi, focus)

    def mode_key(self):
        return None

    def reset(self) -> None:
        for item in self.items.values():
            parent = item.getViewBox() if hasattr(item, "getViewBox") else None
            scene = item.scene()
            if parent is not None:
                parent.removeItem(item)
            elif scene is not None:
                scene.removeItem(item)
        self.items = {}
        self._versions = {}
        for legend in self.legends():
            legend.clear()

    def legends(self) -> list:
        return []

    def draw(self, record, multi: bool, color) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def after_sync(self, records, multi, focus) -> None:
        pass

    def curve(self, plot: pg.PlotItem, key: tuple, name: str | None, pen, symbol=None, symbol_size=5,
              brush=None) -> pg.PlotDataItem:
        item = self.items.get(key)
        if item is None:
            item = pg.PlotDataItem(pen=pen, symbol=symbol, symbolSize=symbol_size, symbolPen=None,
                                   symbolBrush=brush if brush is not None else (pen.color() if symbol else None),
                                   connect="finite", name=name)
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
                               labelOpts={"color": DIVERGED_COLOR, "position": 0.85, "fill": (255, 255, 255, 200)})
        plot.addItem(line)
        self.items[key] = line


# ====================================================================== loss

class LossPanel(PlotPanel):
    def __init__(self, parent=None):
        self.epoch_axis = EpochAxis()
        widget = pg.PlotWidget(axisItems={"top": self.epoch_axis, "left": LogAxis("left")})
        super().__init__("1 · Loss", "Training loss of every step (thin), its mean per epoch (dots) and the "
                         "validation loss after each epoch (dashed). Lower is better; a validation loss "
                         "rising while the training loss falls means overfitting.", plot_widget=widget)
        self.plot = widget.getPlotItem()
        self.plot.showAxis("top")
        self.setup_plot(self.plot, "step", "loss")
        self.plot.getAxis("top").setLabel("epoch")
        self.legend = add_legend(self.plot)
        self.log_box = QCheckBox("log scale")
        self.log_box.setChecked(True)
        self.log_box.setToolTip("Logarithmic loss axis: shows progress late in training")
        self.log_box.toggled.connect(lambda on: self.plot.setLogMode(y=on))
        self.plot.setLogMode(y=True)
        self.header.addWidget(self.log_box)

    def legends(self):
        return [self.legend]

    def draw(self, r, multi, color):
        prefix = f"{r.name}: " if multi else ""
        light = QColor(color or TRAIN_COLOR)
        light.setAlpha(70)
        self.curve(self.plot, (r.run_id, "step"), None if multi else "train (each step)", pg.mkPen(light, width=1)) \
            .setData(r.loss_step.data, positive(r.loss.data))
        ep = r.epochs
        set_if_grown(self.curve(self.plot, (r.run_id, "train"), f"{prefix}train (epoch mean)",
                                pg.mkPen(color or "#0b4f8a", width=2), symbol="o"),
                     ep["step"].data, positive(ep["train_loss"].data))
        val = ep["val_loss"].data
        if np.isfinite(val).any():
            set_if_grown(self.curve(self.plot, (r.run_id, "val"), f"{prefix}validation",
                                    pg.mkPen(color or VAL_COLOR, width=2, style=Qt.DashLine), symbol="s"),
                         ep["step"].data, positive(val))
        self.diverged_marker(self.plot, r, label=True)

    def after_sync(self, records, multi, focus):
        if focus is not None:
            self.epoch_axis.steps_per_epoch = max(1, focus.steps_per_epoch)


# ================================================================== accuracy

class AccuracyPanel(PlotPanel):
    def __init__(self, parent=None):
        super().__init__("2 · Accuracy", "Fraction of examples classified correctly, measured after each "
                         "epoch on the training set and on the validation set (not used for training).")
        self.plot = self.widget.getPlotItem()
        self.setup_plot(self.plot, "step", "accuracy (%)")
        self.plot.setYRange(0, 100)
        self.legend = add_legend(self.plot, offset=(-4, -4))

    def legends(self):
        return [self.legend]

    def draw(self, r, multi, color):
        ep = r.epochs
        prefix = f"{r.name}: " if multi else ""
        set_if_grown(self.curve(self.plot, (r.run_id, "train"), f"{prefix}train",
                                pg.mkPen(color or TRAIN_COLOR, width=2), symbol="o"),
                     ep["step"].data, 100 * ep["train_accuracy"].data)
        set_if_grown(self.curve(self.plot, (r.run_id, "val"), f"{prefix}validation",
                                pg.mkPen(color or VAL_COLOR, width=2, style=Qt.DashLine), symbol="s"),
                     ep["step"].data, 100 * ep["val_accuracy"].data)
        self.diverged_marker(self.plot, r)

    def after_sync(self, records, multi, focus):
        regression = records and all(not r.is_classification for r in records)
        self.set_note("Accuracy applies to classification; this task is regression (see the loss)."
                      if regression else "")


# ============================================================ per-layer plots

class LayerPanel(PlotPanel):
    """A curve per layer of a per-layer metric (one of StepMetrics' arrays)."""

    key = ""
    log_y = False
    y_label = ""

    def __init__(self, title, help_text, parent=None):
        super().__init__(title, help_text, parent)
        self.plot = self.widget.getPlotItem()
        self.setup_plot(self.plot, "step", self.y_label, self.log_y)
        self.legend = add_legend(self.plot)

    def legends(self):
        return [self.legend]

    def values(self, r) -> np.ndarray:
        return r.per_layer[self.key].data

    def layer_name(self, r, i, multi) -> str | None:
        if multi:
            return r.name if i == 0 else None
        layer = r.layers[i] if i < len(r.layers) else None
        return f"{layer.name} ({layer.activation})" if layer else f"layer {i + 1}"

    def draw(self, r, multi, color):
        values = self.values(r)
        if values.ndim != 2 or values.shape[0] == 0:
            return
        steps = r.log_step.data
        colors = layer_colors(values.shape[1], color)
        for i in range(values.shape[1]):
            column = values[:, i]
            if not np.isfinite(column).any():
                continue
            y = positive(column) if self.log_y else column
            self.curve(self.plot, (r.run_id, i), self.layer_name(r, i, multi),
                       pg.mkPen(colors[i], width=1.5)).setData(steps, y)
        self.diverged_marker(self.plot, r)


class GradNormPanel(LayerPanel):
    key, log_y, y_label = "grad_norm", True, "‖∂loss/∂W‖ (L2 norm)"

    def __init__(self, parent=None):
        super().__init__("3 · Gradient norm per layer", "L2 norm of each layer's kernel gradient, log scale. "
                         "Vanishing gradients: the lower layers' curves sit orders of magnitude below the "
                         "top ones (they barely learn). Exploding: curves shoot up.")


class DeadPanel(LayerPanel):
    key, y_label = "dead_fraction", "% of the layer's units"

    def __init__(self, parent=None):
        super().__init__("4 · Dead units (ReLU family) · saturated units (logistic/tanh)",
                         "Solid: % of a ReLU-family layer's units that output 0 for every example of a fixed "
                         "probe batch (dead units never recover). Dashed: % of logistic/tanh outputs within 1% "
                         "of their bounds (saturated: their gradient is nearly 0).")
        self.plot.setYRange(0, 100)
        self._last_labels = 0.0

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
                item = self.curve(self.plot, (r.run_id, key, i), name, pg.mkPen(colors[i], width=1.5, style=style))
                item.setData(steps, 100 * column)
        self.diverged_marker(self.plot, r)
        if not multi:
            self._update_labels(r, dead, sat)

    def _update_labels(self, r, dead, sat) -> None:
        """Legend entries with the latest count: "layer 2 (relu): 5/32 dead"."""
        counts = r.per_layer["dead_count"].data
        for sample, label in self.legend.items:
            item = sample.item
            for (run_id, key, *rest), stored in self.items.items():
                if stored is item and rest and isinstance(rest[0], int):
                    i = rest[0]
                    layer = r.layers[i] if i < len(r.layers) else None
                    base = f"{layer.name} ({layer.activation})" if layer else f"layer {i + 1}"
                    if key == "dead":
                        units = f"/{layer.units}" if layer and layer.units else ""
                        text = f"{base}: {int(counts[-1, i]) if math.isfinite(counts[-1, i]) else 0}{units} dead"
                    else:
                        text = f"{base}: {100 * sat[-1, i]:.0f}% saturated"
                    label.setText(text)

    def after_sync(self, records, multi, focus):
        any_data = any(r.per_layer["dead_fraction"].n and (np.isfinite(r.per_layer["dead_fraction"].data).any() or
                                                          np.isfinite(r.per_layer["saturated"].data).any())
                       for r in records)
        self.set_note("" if any_data or not records else
                      "No ReLU-family or logistic/tanh hidden layer in the shown runs: nothing can die or saturate.")


class ActivationPanel(LayerPanel):
    key, y_label = "act_mean", "layer output"

    def __init__(self, parent=None):
        super().__init__("5 · Activations per layer over time",
                         "Bands: mean ± standard deviation of each layer's outputs on a fixed probe batch. "
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

    def mode_key(self):
        return self.mode.currentData()

    def reset_and_redraw(self) -> None:
        self._sig = None
        records, multi, focus = self._last_records
        self.sync(records, multi, focus)

    def reset(self):
        super().reset()
        if self.image is not None:
            self.plot.removeItem(self.image)
            self.image = None

    def draw(self, r, multi, color):
        layer = self.mode.currentData()
        if layer is not None and layer >= 0:
            return  # the heat map is drawn for the focus run in after_sync
        mean, std = r.per_layer["act_mean"].data, r.per_layer["act_std"].data
        if mean.ndim != 2 or not len(mean):
            return
        steps = r.log_step.data
        colors = layer_colors(mean.shape[1], color)
        for i in range(mean.shape[1] - 1):   # hidden layers (the output's values are probabilities/targets)
            c = QColor(colors[i])
            hi = self.curve(self.plot, (r.run_id, "hi", i), None, pg.mkPen(None))
            lo = self.curve(self.plot, (r.run_id, "lo", i), None, pg.mkPen(None))
            hi.setData(steps, mean[:, i] + std[:, i])
            lo.setData(steps, mean[:, i] - std[:, i])
            if (r.run_id, "band", i) not in self.items:
                fill = QColor(c)
                fill.setAlpha(45 if not multi else 25)
                band = pg.FillBetweenItem(hi, lo, brush=pg.mkBrush(fill))
                self.plot.addItem(band)
                self.items[(r.run_id, "band", i)] = band
            self.curve(self.plot, (r.run_id, "mean", i), self.layer_name(r, i, multi),
                       pg.mkPen(c, width=1.5)).setData(steps, mean[:, i])
        self.diverged_marker(self.plot, r)

    def after_sync(self, records, multi, focus):
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
        layer = self.mode.currentData()
        self.plot.setLabel("left", "pre-activation z" if layer is not None and layer >= 0 else "layer output")
        if layer is None or layer < 0 or focus is None:
            return
        heat = focus.heatmap
        if len(heat.steps) < 2 or layer >= heat.shape[0]:
            return
        counts = heat.layer(layer).astype(np.float64)
        peak = counts.max(axis=1, keepdims=True)
        img = np.divide(counts, peak, out=np.zeros_like(counts), where=peak > 0).T  # (bins, time)
        if self.image is None:
            self.image = pg.ImageItem()
            self.image.setColorMap(pg.colormap.get("viridis"))
            self.plot.addItem(self.image)
        edges = focus.histogram_edges
        steps = heat.steps.data
        self.image.setImage(img, levels=(0, 1), autoLevels=False)
        self.image.setRect(QRectF(float(steps[0]), float(edges[0]), float(max(1, steps[-1] - steps[0])),
                                  float(edges[-1] - edges[0])))


# ========================================================= update ratio and LR

class RatioPanel(PlotPanel):
    def __init__(self, parent=None):
        widget = pg.GraphicsLayoutWidget()
        widget.ci.setContentsMargins(2, 2, 2, 2)
        super().__init__("6 · Update/weight ratio per layer · learning rate",
                         "Top: ‖ΔW‖ / ‖W‖ per step and layer, log scale; around 1e-3 is a common healthy value, "
                         "much higher means the learning rate is too high for that layer, much lower that it "
                         "barely learns. Bottom: the learning rate actually used (schedule or your change).",
                         plot_widget=widget)
        self.plot = widget.addPlot(row=0, col=0, axisItems={"left": LogAxis("left")})
        self.lr_plot = widget.addPlot(row=1, col=0)
        widget.ci.layout.setRowStretchFactor(0, 3)
        widget.ci.layout.setRowStretchFactor(1, 2)
        self.setup_plot(self.plot, "", "‖ΔW‖ / ‖W‖", log_y=True)
        self.setup_plot(self.lr_plot, "step", "learning rate")
        self.lr_plot.setXLink(self.plot)
        self.plot.hideAxis("bottom")
        self.legend = add_legend(self.plot)
        self.lr_legend = add_legend(self.lr_plot)
        self.reference = pg.InfiniteLine(pos=-3, angle=0, pen=pg.mkPen("#888", width=1, style=Qt.DotLine),
                                         label="1e-3", labelOpts={"color": "#666", "position": 0.03})
        self.plot.addItem(self.reference)

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
                name = (r.name if i == 0 else None) if multi else (r.layers[i].name if i < len(r.layers) else None)
                self.curve(self.plot, (r.run_id, i), name, pg.mkPen(colors[i], width=1.5)) \
                    .setData(steps, positive(column))
        self.curve(self.lr_plot, (r.run_id, "lr"), f"{r.name}" if multi else "learning rate",
                   pg.mkPen(color or "#2ca02c", width=2)).setData(steps, r.lr.data)
        self.diverged_marker(self.plot, r)
        self.diverged_marker(self.lr_plot, r)


# ========================================================== boundary / confusion

class BoundaryView(pg.PlotWidget):
    """Class probabilities over the input plane, the training points on top."""

    def __init__(self):
        super().__init__()
        item = self.getPlotItem()
        PlotPanel.setup_plot(item, "x1", "x2")
        item.setClipToView(False)
        item.setDownsampling(auto=False)
        self.setAspectLocked(True)
        self.image = pg.ImageItem()
        self.addItem(self.image)
        self.scatters: list = []
        self.surface_id = None
        self.points_id = None

    def show_run(self, record) -> None:
        from .panels import CLASS_COLORS

        surface, points = record.surface, record.points
        if points is not None and id(points) != self.points_id:
            self.points_id = id(points)
            self._clear_scatters()
            for c in np.unique(points.y):
                rows = points.y == c
                scatter = pg.ScatterPlotItem(points.x[rows, 0], points.x[rows, 1], size=5,
                                             pen=pg.mkPen("#333", width=0.6),
                                             brush=pg.mkBrush(CLASS_COLORS[int(c) % len(CLASS_COLORS)]))
                self.addItem(scatter)
                self.scatters.append(scatter)
        if surface is None or id(surface) == self.surface_id:
            return
        first = self.surface_id is None
        self.surface_id = id(surface)
        probs = np.asarray(surface.probabilities, dtype=np.float32)
        if probs.shape[-1] == 1:
            probs = np.concatenate([1 - probs, probs], axis=-1)
        colors = np.array([QColor(c).getRgbF()[:3] for c in CLASS_COLORS], dtype=np.float32)
        k = probs.shape[-1]
        rgb = probs @ colors[np.arange(k) % len(colors)]
        confidence = probs.max(axis=-1, keepdims=True)   # pale where the model hesitates
        strength = 0.25 + 0.5 * (confidence - 1 / k) / (1 - 1 / k)
        rgb = 1 - strength * (1 - rgb)
        self.image.setImage((np.clip(rgb, 0, 1) * 255).astype(np.uint8), autoLevels=False, levels=(0, 255))
        xs, ys = surface.xs, surface.ys
        dx = (xs[-1] - xs[0]) / max(1, len(xs) - 1)
        dy = (ys[-1] - ys[0]) / max(1, len(ys) - 1)
        self.image.setRect(QRectF(float(xs[0] - dx / 2), float(ys[0] - dy / 2), float(xs[-1] - xs[0] + dx),
                                  float(ys[-1] - ys[0] + dy)))
        if first:
            self.autoRange(padding=0)

    def _clear_scatters(self) -> None:
        for scatter in self.scatters:
            self.removeItem(scatter)
        self.scatters = []

    def clear_run(self) -> None:
        self.image.clear()
        self._clear_scatters()
        self.surface_id = self.points_id = None


class ConfusionView(pg.GraphicsLayoutWidget):
    """Validation confusion matrix and a strip of misclassified images."""

    def __init__(self):
        super().__init__()
        self.matrix_plot = self.addPlot(row=0, col=0)
        self.matrix_plot.setLabel("left", "true class")
        self.matrix_plot.setLabel("bottom", "predicted class")
        self.matrix_plot.invertY(True)
        self.matrix_plot.setAspectLocked(True)
        self.matrix_plot.setMouseEnabled(False, False)
        self.matrix_image = pg.ImageItem()
        self.matrix_image.setColorMap(pg.colormap.get("Blues", source="matplotlib")
                                      if "Blues" in pg.colormap.listMaps("matplotlib") else pg.colormap.get("viridis"))
        self.matrix_plot.addItem(self.matrix_image)
        self.strip_plot = self.addPlot(row=1, col=0)
        self.strip_plot.hideAxis("left")
        self.strip_plot.hideAxis("bottom")
        self.strip_plot.invertY(True)
        self.strip_plot.setAspectLocked(True)
        self.strip_plot.setMouseEnabled(False, False)
        self.strip_plot.setTitle("misclassified validation images (true → predicted)", size="8pt")
        self.strip_image = pg.ImageItem()
        self.strip_plot.addItem(self.strip_image)
        self.ci.layout.setRowStretchFactor(0, 3)
        self.ci.layout.setRowStretchFactor(1, 2)
        self.texts: list = []
        self.report_id = None

    def show_run(self, record) -> None:
        report = record.confusion
        if report is None or id(report) == self.report_id:
            return
        self.report_id = id(report)
        for t in self.texts:
            t.scene() and t.getViewBox() and t.getViewBox().removeItem(t)
        self.texts = []
        m = np.asarray(report.matrix, dtype=np.float64)
        rows = m.sum(axis=1, keepdims=True)
        frac = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
        self.matrix_image.setImage(frac, levels=(0, 1), autoLevels=False)
        names = list(record.class_names) or [str(i) for i in range(len(m))]
        short = [n.split("/")[0][:7] for n in names]
        ticks = [[(i + 0.5, short[i]) for i in range(len(m))]]
        self.matrix_plot.getAxis("bottom").setTicks(ticks)
        self.matrix_plot.getAxis("left").setTicks(ticks)
        if len(m) <= 12:
            for i in range(len(m)):
                for j in range(len(m)):
                    if m[i, j]:
                        t = pg.TextItem(f"{int(m[i, j])}", color="w" if frac[i, j] > 0.5 else "#222",
                                        anchor=(0.5, 0.5))
                        t.setPos(j + 0.5, i + 0.5)
                        self.matrix_plot.addItem(t)
                        self.texts.append(t)
        accuracy = np.trace(m) / max(1, m.sum())
        self.matrix_plot.setTitle(f"validation confusion, epoch {report.epoch}: {accuracy:.1%} correct", size="9pt")
        images = np.asarray(report.examples, dtype=np.float32)
        if len(images) == 0:
            self.strip_image.clear()
            return
        k, h, w = images.shape
        cols = min(8, k)
        n_rows = math.ceil(k / cols)
        pad_h = h + 10
        mosaic = np.ones((n_rows * pad_h, cols * (w + 2)), dtype=np.float32) * float(images.max())
        for idx in range(k):
            r, c = divmod(idx, cols)
            mosaic[r * pad_h:r * pad_h + h, c * (w + 2):c * (w + 2) + w] = images[idx]
            t = pg.TextItem(f"{short[report.true_labels[idx]]}→{short[report.predicted[idx]]}", color="#b00020",
                            anchor=(0.5, 0))
            t.setFont(QFont("Sans", 6))
            t.setPos(c * (w + 2) + w / 2, r * pad_h + h - 1)
            self.strip_plot.addItem(t)
            self.texts.append(t)
        self.strip_image.setImage(mosaic, levels=(float(images.max()), float(images.min())), autoLevels=False)
        self.strip_plot.autoRange(padding=0)

    def clear_run(self) -> None:
        self.matrix_image.clear()
        self.strip_image.clear()
        self.report_id = None
