"""The per-layer live plots (panels 3-6): gradient norms, dead and saturated
units, activation statistics, update/weight ratios and the learning rate.

Built on :mod:`gui.plots` (``PlotPanel``, ``Follow``); one curve per layer and
run: colour = layer (counted from 1, as the model list does), line style =
run (the focus run solid, the others dashed and fainter); the key above each
plot names both.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import QComboBox, QGraphicsPathItem

from .plots import BAND_POINTS, Follow, LogAxis, PlotPanel, faded, layer_colors, setup_plot


# ============================================================ per-layer plots

COMPACT_LAYERS = 4   # beyond this many layers (or with several runs) the key shows a square per layer


def compact_layer(i: int, n: int, multi: bool) -> tuple:
    """(style, alpha, short) of layer ``i``'s key entry: a line with its full name, or, when the
    key would crowd the plot, a coloured square and "layer 1", "2", ..., "out"."""
    if not multi and n <= COMPACT_LAYERS:
        return Qt.SolidLine, 255, None
    return None, 255, "layer 1" if i == 0 else ("out" if i == n - 1 else str(i + 1))


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
        self.follows = [Follow(self.plot, y_fixed=self.y_fixed)]

    @staticmethod
    def layer_name(r, i, multi=False) -> str:
        """"layer 1 (relu)" ... "output (softmax)": layers count from 1, as in the model list."""
        layer = r.layers[i] if i < len(r.layers) else None
        return f"{layer.name} ({layer.activation})" if layer else f"layer {i + 1}"

    def layer_pen(self, r, i, n):
        """(colour, style) of layer ``i`` of run ``r``: colour = layer, style (and fading) = run."""
        style, alpha = self.style_of(r)
        return faded(layer_colors(n)[i], alpha), style

    def draw(self, r, multi, color):
        values = r.per_layer[self.key].data
        if values.ndim != 2 or values.shape[0] == 0:
            return
        steps = r.log_step.data
        for i in range(values.shape[1]):
            column = values[:, i]
            if not np.isfinite(column).any() and r.diverged_step is None:
                continue
            pen_color, style = self.layer_pen(r, i, values.shape[1])
            self.light(self.plot, (r.run_id, i), None, pen_color, style=style).set_points(steps, column)
        self.diverged_marker(self.plot, r)

    def key_entries(self, records, multi, focus, kinds=(None,)):
        """Layers (colour) of the focus run, then, with several runs, the runs (line style)."""
        lead = focus if focus in records else (records[-1] if records else None)
        if lead is None:
            return []
        out = []
        n = lead.per_layer[self.key].data.shape[1] if lead.per_layer[self.key].data.ndim == 2 else 0
        for i in range(n):
            item = next((self.items[k] for k in ((lead.run_id, i), (lead.run_id, "mean", i),
                                                 (lead.run_id, "dead", i), (lead.run_id, "sat", i))
                         if k in self.items), None)
            if item is not None:
                out.append((item, self.entry_text(lead, i), layer_colors(n)[i], *compact_layer(i, n, multi)))
        if multi:
            for r in records:
                item = next((v for k, v in self.items.items() if k[0] == r.run_id and len(k) >= 2
                             and hasattr(v, "set_points")), None)
                if item is not None:
                    style, alpha = self.style_of(r)
                    text = f"{r.label} (shown solid)" if style == Qt.SolidLine else r.label
                    out.append((item, text, "#333333", style, alpha, r.label))
        return out

    def entry_text(self, r, i) -> str:
        return self.layer_name(r, i)


class GradNormPanel(LayerPanel):
    key, log_y, y_label = "grad_norm", True, "‖∂loss/∂W‖"   # L2 norm: the help says so

    def __init__(self, parent=None):
        super().__init__("3 · Gradient norm per layer", "L2 norm of each layer's kernel gradient, log scale. "
                         "Vanishing gradients: the lower layers' curves sit orders of magnitude below the "
                         "top ones (they barely learn). Exploding: curves shoot up.")


class DeadPanel(LayerPanel):
    key, y_label, y_fixed = "dead_fraction", "% of units", (0, 101)   # short: the axis is ~120 px tall

    def __init__(self, parent=None):
        super().__init__("4 · Dead and saturated units",
                         "Dead units apply to ReLU-family layers, saturation to logistic/tanh ones. "
                         "Solid: % of a ReLU-family layer's units that output 0 for every example of a fixed "
                         "probe batch (dead: their own weights get no gradient). Dotted: % whose input is <= 0 "
                         "for every probe example (comatose; drawn where it differs from dead, for a single run: "
                         "leaky/ELU units keep a small gradient there and can wake up). Dashed: % of logistic/tanh "
                         "outputs within 1% of their bounds (saturated: their gradient is nearly 0). With several "
                         "runs, line style tells the runs apart and the key counts the focus run's units.")

    def draw(self, r, multi, color):
        steps = r.log_step.data
        dead = r.per_layer["dead_fraction"].data
        sat = r.per_layer["saturated"].data
        coma = r.per_layer["comatose_fraction"].data
        if dead.ndim != 2 or not len(dead):
            return
        for i in range(dead.shape[1]):
            pen_color, run_style = self.layer_pen(r, i, dead.shape[1])
            for key, values, style in (("dead", dead, Qt.SolidLine), ("sat", sat, Qt.DashLine),
                                       ("coma", coma, Qt.DotLine)):
                column = values[:, i]
                if not np.isfinite(column).any():
                    continue
                if key == "coma" and (multi or np.array_equal(column, dead[:, i])):
                    continue   # a ReLU's comatose units are its dead ones; with several runs style means run
                curve = self.light(self.plot, (r.run_id, key, i), None, pen_color,
                                   style=style if not multi else run_style)
                curve.mark_nonfinite = False   # NaN: this layer cannot die (or saturate), not an error
                curve.set_points(steps, 100 * column)
        self.diverged_marker(self.plot, r)

    def key_entries(self, records, multi, focus):
        """Per layer, the latest count: "layer 2 (relu): 5/32 dead", "layer 3 (tanh): 40% saturated"."""
        lead = focus if focus in records else (records[-1] if records else None)
        if lead is None:
            return []
        dead, sat = lead.per_layer["dead_fraction"].data, lead.per_layer["saturated"].data
        coma = lead.per_layer["comatose_fraction"].data
        counts = lead.per_layer["dead_count"].data
        if dead.ndim != 2 or not len(dead):
            return []
        n = dead.shape[1]
        out = []
        for i in range(n):
            layer = lead.layers[i] if i < len(lead.layers) else None
            base = self.layer_name(lead, i)
            for kind, style in (("dead", Qt.SolidLine), ("sat", Qt.DashLine), ("coma", Qt.DotLine)):
                item = self.items.get((lead.run_id, kind, i))
                if item is None:
                    continue
                if kind == "dead":
                    units = f"/{layer.units}" if layer and layer.units else ""
                    count = counts[-1, i]
                    text = f"{base}: {int(count) if math.isfinite(count) else 0}{units} dead"
                elif kind == "coma":
                    text = f"{base}: {100 * coma[-1, i]:.0f}% comatose"
                else:
                    text = f"{base}: {100 * sat[-1, i]:.0f}% saturated"
                if multi or n > COMPACT_LAYERS:   # a square per layer: "■ 1: 3/100 dead"
                    short = text.replace("layer ", "" if i else "layer ").replace(" dead", "" if i else " dead")
                    short = short.split(" (")[0] + short[short.index(")") + 1:] if " (" in short else short
                    out.append((item, text, layer_colors(n)[i], None, 255, short))
                else:
                    out.append((item, text, layer_colors(n)[i], style, 255))
        if multi:
            for r in records:
                item = next((v for k, v in self.items.items() if k[0] == r.run_id and len(k) == 3), None)
                if item is not None:
                    style, alpha = self.style_of(r)
                    out.append((item, f"{r.label} (shown solid)" if style == Qt.SolidLine else r.label,
                                "#333333", style, alpha, r.label))
        return out

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
        edge = QColor(color)
        edge.setAlpha(110)
        pen = QPen(edge, 1)   # a thin solid edge per layer: where the bands overlap, each stays traceable
        pen.setCosmetic(True)  # (a dotted edge tripled the paint time; a solid one costs what a curve does)
        self.setPen(pen)
        fill = QColor(color)
        fill.setAlpha(min(color.alpha(), 16))
        self.setBrush(QBrush(fill))
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
        super().__init__("5 · Activations",
                         "Bands: mean ± standard deviation of each hidden layer's outputs on a fixed probe batch. "
                         "Heat map: histogram of one layer's pre-activations z over time (brighter = more "
                         "units there). Healthy deep nets keep similar spreads in every layer; SELU keeps "
                         "mean 0 and std 1.")
        self.mode = QComboBox()
        self.mode.setToolTip("What to show: bands for every layer, or one layer's pre-activation histogram")
        self.mode.addItem("mean ± std", -1)
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
        n = mean.shape[1]
        focus_run = not multi or (self.focus is not None and r.run_id == self.focus.run_id)
        for i in range(n - 1):   # hidden layers (the output's values are probabilities/targets)
            if focus_run:   # bands for the focus run only: several runs' bands merged into one blob
                band = self.items.get((r.run_id, "band", i))
                if band is None:
                    band = BandItem(faded(layer_colors(n)[i], 28))
                    band.setZValue(-5)
                    self.plot.addItem(band)
                    self.items[(r.run_id, "band", i)] = band
                band.set_band(steps, mean[:, i] - std[:, i], mean[:, i] + std[:, i])
            pen_color, style = self.layer_pen(r, i, n)
            self.light(self.plot, (r.run_id, "mean", i), None, pen_color, width=1.5 if focus_run else 1,
                       style=style).set_points(steps, mean[:, i])
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
        super().__init__("6 · Update ratio · learning rate",
                         "Top: ‖ΔW‖ / ‖W‖ per step and layer, log scale; around 1e-3 is a common healthy value, "
                         "much higher means the learning rate is too high for that layer, much lower that it "
                         "barely learns. Bottom: the learning rate actually used (schedule or your change).",
                         plot_widget=widget)
        self.plot = widget.addPlot(row=0, col=0, axisItems={"left": LogAxis("left")})
        self.lr_plot = widget.addPlot(row=1, col=0)
        widget.ci.layout.setRowStretchFactor(0, 3)
        widget.ci.layout.setRowStretchFactor(1, 2)
        # short y titles: a rotated axis title longer than its axis is cut (these axes are 55-90 px tall)
        setup_plot(self.plot, "", "‖ΔW‖/‖W‖", log_y=True)
        setup_plot(self.lr_plot, "step", "lr")
        self.plot.hideAxis("bottom")
        self.reference = pg.InfiniteLine(pos=-3, angle=0, pen=pg.mkPen("#888", width=1, style=Qt.DotLine),
                                         label="1e-3", labelOpts={"color": "#666", "position": 0.92})
        self.plot.addItem(self.reference)
        self.follows = [Follow(self.plot), Follow(self.lr_plot, y_from_zero=True)]

    def draw(self, r, multi, color):
        ratio = r.per_layer["update_ratio"].data
        steps = r.log_step.data
        if ratio.ndim == 2 and len(ratio):
            for i in range(ratio.shape[1]):
                column = ratio[:, i]
                if not np.isfinite(column).any() and r.diverged_step is None:
                    continue
                pen_color, style = self.layer_pen(r, i, ratio.shape[1])
                self.light(self.plot, (r.run_id, i), None, pen_color, style=style).set_points(steps, column)
        style, alpha = self.style_of(r)
        self.light(self.lr_plot, (r.run_id, "lr"), None, faded(color or "#2ca02c", alpha), 2, style=style) \
            .set_points(steps, r.lr.data)
        self.diverged_marker(self.plot, r)
        self.diverged_marker(self.lr_plot, r)

    key = "update_ratio"
    layer_pen = LayerPanel.layer_pen
    key_entries = LayerPanel.key_entries
    entry_text = LayerPanel.entry_text
    layer_name = staticmethod(LayerPanel.layer_name)
