"""What the model predicts: the decision boundary (2-D data) and the
confusion matrix with misclassified images (image data).

Both draw the focus run's latest ``DecisionSurface`` / ``ConfusionReport``
events, and only when a new one arrived (the engine sends surfaces a few
times a second and confusion reports once an epoch).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

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
        self.show_uncertainty = False   # MC-dropout map instead of the class colours (when the engine sent one)

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
        if surface is None or (id(surface), self.show_uncertainty) == self.surface_id:
            return
        first = self.surface_id is None
        self.surface_id = (id(surface), self.show_uncertainty)
        if self.show_uncertainty and surface.uncertainty is not None:
            rgb = self._uncertainty_rgb(np.asarray(surface.uncertainty, dtype=np.float32))
        else:
            rgb = self._class_rgb(np.asarray(surface.probabilities, dtype=np.float32))
        self.image.setImage((np.clip(rgb, 0, 1) * 255).astype(np.uint8), autoLevels=False, levels=(0, 255))
        xs, ys = surface.xs, surface.ys
        dx = (xs[-1] - xs[0]) / max(1, len(xs) - 1)
        dy = (ys[-1] - ys[0]) / max(1, len(ys) - 1)
        self.image.setRect(QRectF(float(xs[0] - dx / 2), float(ys[0] - dy / 2), float(xs[-1] - xs[0] + dx),
                                  float(ys[-1] - ys[0] + dy)))
        if first:
            self.autoRange(padding=0)

    @staticmethod
    def _uncertainty_rgb(std: np.ndarray) -> np.ndarray:
        """White (sure) to dark purple (the MC-dropout passes disagree most)."""
        top = float(np.nanmax(std)) if np.isfinite(std).any() else 1.0
        u = np.nan_to_num(std / max(top, 1e-9))[..., None]
        return 1 - u * (1 - np.array([0.33, 0.1, 0.45], dtype=np.float32))

    @staticmethod
    def _class_rgb(probs: np.ndarray) -> np.ndarray:
        """Class colours weighted by the predicted probabilities, pale where the model hesitates."""
        if probs.shape[-1] == 1:
            probs = np.concatenate([1 - probs, probs], axis=-1)
        colors = np.array([QColor(c).getRgbF()[:3] for c in CLASS_COLORS], dtype=np.float32)
        k = probs.shape[-1]
        rgb = probs @ colors[np.arange(k) % len(colors)]
        confidence = probs.max(axis=-1, keepdims=True)
        strength = 0.25 + 0.5 * (confidence - 1 / k) / (1 - 1 / k)
        return 1 - strength * (1 - rgb)

    def _clear_scatters(self) -> None:
        for scatter in self.scatters:
            self.removeItem(scatter)
        self.scatters = []

    def clear_run(self) -> None:
        self.image.clear()
        self._clear_scatters()
        self.surface_id = self.points_id = None


class ConfusionView(QWidget):
    """Validation confusion matrix (rows: true class) and a grid of misclassified images."""

    CELLS = 12   # misclassified examples shown
    COLUMNS = 6

    def __init__(self):
        super().__init__()
        self.matrix = pg.PlotWidget()
        plot = self.matrix_plot = self.matrix.getPlotItem()
        setup_plot(plot, "predicted class", "true class")
        plot.setClipToView(False)
        plot.setDownsampling(auto=False)
        plot.invertY(True)
        plot.setAspectLocked(True)
        plot.setMouseEnabled(False, False)
        plot.hideButtons()
        self.matrix_image = pg.ImageItem()
        self.matrix_image.setColorMap(pg.ColorMap([0.0, 1.0], [(255, 255, 255), (8, 48, 107)]))
        plot.addItem(self.matrix_image)
        self.caption = QLabel("misclassified validation images: true class → predicted")
        self.caption.setStyleSheet("color: #444; font-size: 8pt;")
        grid_widget = QWidget()
        grid = QGridLayout(grid_widget)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(2)
        self.cells, self.labels = [], []
        for k in range(self.CELLS):
            cell = QLabel()
            cell.setAlignment(Qt.AlignHCenter | Qt.AlignBottom)
            label = QLabel()
            label.setAlignment(Qt.AlignHCenter | Qt.AlignTop)
            label.setWordWrap(True)
            label.setStyleSheet("font-size: 7pt; color: #b00020;")
            row, col = divmod(k, self.COLUMNS)
            grid.addWidget(cell, 2 * row, col)
            grid.addWidget(label, 2 * row + 1, col)
            self.cells.append(cell)
            self.labels.append(label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.matrix, 3)
        layout.addWidget(self.caption)
        layout.addWidget(grid_widget, 0)
        self.texts: list = []
        self.report_id = None

    def show_run(self, record) -> None:
        report = record.confusion
        if report is None or id(report) == self.report_id:
            return
        self.report_id = id(report)
        plot = self.matrix_plot
        for t in self.texts:
            plot.removeItem(t)
        self.texts = []
        m = np.asarray(report.matrix, dtype=np.float64)
        n = len(m)
        rows = m.sum(axis=1, keepdims=True)
        frac = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
        self.matrix_image.setImage(frac, levels=(0, 1), autoLevels=False)
        names = list(record.class_names) or [str(i) for i in range(n)]
        left = plot.getAxis("left")
        labels = [f"{i} {names[i]}" for i in range(n)]   # whole names: "9 Ankle boot", not "9 Ankle boo"
        left.setTicks([[(i + 0.5, text) for i, text in enumerate(labels)]])
        left.setWidth(QFontMetrics(left.style.get("tickFont") or QFont()).horizontalAdvance(max(labels, key=len)) + 30)
        plot.getAxis("bottom").setTicks([[(i + 0.5, str(i)) for i in range(n)]])
        font = QFont()
        font.setPointSize(7 if n > 6 else 9)
        if n <= 12:
            for i in range(n):
                for j in range(n):
                    if m[i, j]:
                        t = pg.TextItem(f"{int(m[i, j])}", color="w" if frac[i, j] > 0.45 else "#333",
                                        anchor=(0.5, 0.5))
                        t.setFont(font)
                        t.setPos(j + 0.5, i + 0.5)
                        plot.addItem(t)
                        self.texts.append(t)
        # one call: with the aspect locked, a separate x then y range let the second crop the first
        # (columns 0 and 9 fell off a tall panel); the locked view now grows to contain all n x n cells
        plot.getViewBox().setRange(QRectF(0, 0, n, n), padding=0.02)
        accuracy = np.trace(m) / max(1, m.sum())
        plot.setTitle(f"epoch {report.epoch}: {accuracy:.1%} correct", size="9pt")   # short: never cut
        self.matrix.setToolTip(f"validation confusion matrix after epoch {report.epoch}: {accuracy:.1%} of the "
                               "validation set classified correctly; rows = true class, columns = predicted")
        images = np.asarray(report.examples, dtype=np.float32)
        lo, hi = (float(images.min()), float(images.max())) if len(images) else (0.0, 1.0)

        for k, (cell, label) in enumerate(zip(self.cells, self.labels)):
            if k >= len(images):
                cell.clear()
                label.clear()
                continue
            label.setText(f"{names[report.true_labels[k]]}\n→ {names[report.predicted[k]]}")   # two whole lines
            img = np.clip((images[k] - lo) / max(hi - lo, 1e-6), 0, 1)
            gray = np.ascontiguousarray(255 - (img * 255).astype(np.uint8))   # dark garment on white
            h, w = gray.shape
            qimage = QImage(gray.data, w, h, w, QImage.Format_Grayscale8).copy()
            cell.setPixmap(QPixmap.fromImage(qimage).scaled(2 * w, 2 * h, Qt.KeepAspectRatio))
            cell.setToolTip(f"true: {names[report.true_labels[k]]}\npredicted: {names[report.predicted[k]]}")
        self.caption.setText("misclassified validation images: true → predicted class")

    def clear_run(self) -> None:
        self.matrix_image.clear()
        for cell in self.cells + self.labels:
            cell.clear()
        self.report_id = None
