"""The per-layer live plots (panels 3-6): gradient norms, dead and saturated
units, activation statistics, update/weight ratios and the learning rate.

Built on :mod:`gui.plots` (``PlotPanel``, ``Follow``); one curve per layer,
coloured from the first hidden layer (dark blue) to the output (orange).
"""
from __future__ import annotations

import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import QComboBox, QGraphicsPathItem

from .plots import BAND_POINTS, Follow, LogAxis, PlotPanel, add_legend, layer_colors, setup_plot


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
            self.light(self.plot, (r.run_id, i), self.layer_name(r, i, multi), colors[i]).set_points(steps, column)
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
                         "probe batch (dead: their own weights get no gradient). Dotted: % whose input is <= 0 "
                         "for every probe example (comatose; drawn where it differs from dead: leaky/ELU units "
                         "keep a small gradient there and can wake up). Dashed: % of logistic/tanh outputs "
                         "within 1% of their bounds (saturated: their gradient is nearly 0).")
        self._labels_at = 0.0

    def draw(self, r, multi, color):
        steps = r.log_step.data
        dead = r.per_layer["dead_fraction"].data
        sat = r.per_layer["saturated"].data
        coma = r.per_layer["comatose_fraction"].data
        if dead.ndim != 2 or not len(dead):
            return
        colors = layer_colors(dead.shape[1], color)
        for i in range(dead.shape[1]):
            for key, values, style in (("dead", dead, Qt.SolidLine), ("sat", sat, Qt.DashLine),
                                       ("coma", coma, Qt.DotLine)):
                column = values[:, i]
                if not np.isfinite(column).any() or (key == "coma" and np.array_equal(column, dead[:, i])):
                    continue   # (a ReLU's comatose units are its dead ones: one line)
                name = self.layer_name(r, i, multi) if not multi or i == 0 else None
                self.light(self.plot, (r.run_id, key, i), name, colors[i], style=style).set_points(steps, 100 * column)
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
            if kind == "coma":
                text = f"{base}: {100 * r.per_layer['comatose_fraction'].data[-1, i]:.0f}% comatose"
            elif kind == "dead":
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
            self.light(self.plot, (r.run_id, "mean", i), self.layer_name(r, i, multi), colors[i]) \
                .set_points(steps, mean[:, i])
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
                self.light(self.plot, (r.run_id, i), name, colors[i]).set_points(steps, column)
        self.light(self.lr_plot, (r.run_id, "lr"), r.label if multi else "learning rate", color or "#2ca02c", 2) \
            .set_points(steps, r.lr.data)
        self.diverged_marker(self.plot, r)
        self.diverged_marker(self.lr_plot, r)
