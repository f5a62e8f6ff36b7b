"""The comparison view's place in the window (issue 4 fills it).

Issue 4 trains variants x seeds and writes ``comparison.json``; this tab
will overlay each variant's curves as a mean line with a min-max band
across seeds, next to the comparison table (``engine.compare.comparison_curves``
computes them).  ``add_band`` is the drawing primitive it needs.  Until then
the tab explains how to compare runs by checking them in the run list.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


def add_band(plot: pg.PlotItem, x: np.ndarray, curves: np.ndarray, color: str, name: str) -> None:
    """Mean line and min-max band of ``curves`` (seeds, len(x)) on ``plot``."""
    curves = np.asarray(curves, dtype=np.float64)
    pen = pg.mkPen(color, width=2)
    mean = plot.plot(x, np.nanmean(curves, axis=0), pen=pen, name=name)
    lo = plot.plot(x, np.nanmin(curves, axis=0), pen=pg.mkPen(None))
    hi = plot.plot(x, np.nanmax(curves, axis=0), pen=pg.mkPen(None))
    fill = QColor(color)
    fill.setAlpha(50)
    plot.addItem(pg.FillBetweenItem(lo, hi, brush=pg.mkBrush(fill)))
    mean.setZValue(1)


class ComparisonView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.message = QLabel(
            "<h3>Comparing variants over seeds</h3>"
            "<p>Experiments that declare several variants (for example eight optimizers on one network) "
            "and several seeds will be shown here: one mean curve per variant with its min–max band "
            "across seeds, and a table that says when two variants are not distinguishable.</p>"
            "<p>For now: <b>Train</b> on a comparison preset (most of the Presets menu) trains its variants "
            "one after another with the first seed and overlays them in every plot, one colour per variant. "
            "Any runs can be compared the same way: <b>check them in the run list</b>. "
            "All seeds and the statistics: <code>python main.py run NAME</code>.</p>")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.message.setMaximumWidth(700)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addStretch(1)
