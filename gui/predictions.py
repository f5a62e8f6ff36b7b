"""What the model predicts: the decision boundary (2-D data) and the
confusion matrix with misclassified images (image data).

Both draw the focus run's latest ``DecisionSurface`` / ``ConfusionReport``
events, and only when a new one arrived (the engine sends surfaces a few
times a second and confusion reports once an epoch).
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QFont

from .panels import CLASS_COLORS
from .plots import setup_plot


class BoundaryView(pg.PlotWidget):
    """Class probabilities over the input plane, the training points on top."""

    def __init__(self):
        super().__init__()
        item = self.getPlotItem()
        setup_plot(item, "x1", "x2")
        item.setClipToView(False)
        item.setDownsampling(auto=False)
        self.setAspectLocked(True)
        self.image = pg.ImageItem()
        self.addItem(self.image)
        self.scatters: list = []
        self.surface_id = None
        self.points_id = None

    def show_run(self, record) -> None:
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
