"""Building blocks of the optimizer arena tab: a colour button, compact combo
boxes, and contour lines.

The arena's settings (racers' hyperparameters, schedules, clipping, surface
parameters) are edited with the window's one editor stack,
:mod:`gui.widgets.params`, so a setting edits the same way in every tab.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QColorDialog, QComboBox, QPushButton, QSizePolicy


def compact_combo(combo: QComboBox) -> None:
    """Let a combo box be narrower than its longest entry (the settings
    column has a fixed width)."""
    combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(12)
    combo.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)


class ColorButton(QPushButton):
    """A swatch; clicking opens a colour dialog.  ``color_changed(str)``."""

    color_changed = Signal(str)

    def __init__(self, color: str = "#1f77b4", parent=None):
        super().__init__(parent)
        self.setFixedWidth(36)
        self.setToolTip("Colour of this racer's path and marker")
        self.clicked.connect(self._pick)
        self.set_color(color)

    def set_color(self, color: str) -> None:
        self._color = color
        self.setStyleSheet(f"QPushButton {{ background: {color}; border: 1px solid #555; "
                           f"border-radius: 3px; min-height: 18px; }}")

    def color(self) -> str:
        return self._color

    def _pick(self) -> None:
        chosen = QColorDialog.getColor(QColor(self._color), self, "Racer colour")
        if chosen.isValid():
            self.set_color(chosen.name())
            self.color_changed.emit(chosen.name())


# ------------------------------------------------------------------ contours
# For each marching-squares cell the corners are a=(i, j), b=(i+1, j),
# c=(i+1, j+1), d=(i, j+1); its edges are 0: a-b, 1: b-c, 2: d-c, 3: a-d.
def _edge_points(z, above, xs, ys, level, axis):
    """Crossing points on the grid edges along ``axis`` (0: between [i, j]
    and [i+1, j]; 1: between [i, j] and [i, j+1]).  Returns (crossing mask,
    x array, y array); the arrays are only meaningful where the mask is set."""
    if axis == 0:
        lo, hi, cross = z[:-1, :], z[1:, :], above[:-1, :] != above[1:, :]
    else:
        lo, hi, cross = z[:, :-1], z[:, 1:], above[:, :-1] != above[:, 1:]
    px = np.empty(cross.shape)
    py = np.empty(cross.shape)
    i, j = np.nonzero(cross)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.clip(np.nan_to_num((level - lo[i, j]) / (hi[i, j] - lo[i, j]), nan=0.5), 0.0, 1.0)
    if axis == 0:
        px[i, j] = xs[i] + t * (xs[i + 1] - xs[i])
        py[i, j] = ys[j]
    else:
        px[i, j] = xs[i]
        py[i, j] = ys[j] + t * (ys[j + 1] - ys[j])
    return cross, px, py


def contour_segments(values: np.ndarray, xs: np.ndarray, ys: np.ndarray, level: float) -> np.ndarray:
    """Line segments where the gridded ``values`` [ix, iy] cross ``level``
    (vectorized marching squares).  Returns (2m, 2) points in data
    coordinates, consecutive pairs forming segments (PlotDataItem's
    ``connect="pairs"``)."""
    finite = np.isfinite(values)
    z = np.where(finite, values, values[finite].max() if finite.any() else 0.0)
    above = z > level
    h_cross, hx, hy = _edge_points(z, above, xs, ys, level, 0)  # (n-1, n)
    v_cross, vx, vy = _edge_points(z, above, xs, ys, level, 1)  # (n, n-1)
    # a cell is crossed unless its four corners are on the same side
    corner_sum = (above[:-1, :-1].astype(np.int8) + above[1:, :-1] + above[1:, 1:] + above[:-1, 1:])
    ci, cj = np.nonzero((corner_sum > 0) & (corner_sum < 4))
    if ci.size == 0:
        return np.empty((0, 2))
    # the four edge points of every cell the level passes through
    index = ((ci, cj), (ci + 1, cj), (ci, cj + 1), (ci, cj))
    sources = ((h_cross, hx, hy), (v_cross, vx, vy), (h_cross, hx, hy), (v_cross, vx, vy))
    crossing = np.stack([src[0][idx] for src, idx in zip(sources, index)], axis=1)
    ex = np.stack([src[1][idx] for src, idx in zip(sources, index)], axis=1)
    ey = np.stack([src[2][idx] for src, idx in zip(sources, index)], axis=1)
    n = crossing.sum(axis=1)
    out = []
    two = n == 2
    if two.any():
        order = np.argsort(~crossing[two], axis=1, kind="stable")[:, :2]
        rows = np.arange(order.shape[0])
        px, py = ex[two], ey[two]
        first = np.stack([px[rows, order[:, 0]], py[rows, order[:, 0]]], axis=1)
        second = np.stack([px[rows, order[:, 1]], py[rows, order[:, 1]]], axis=1)
        out.append(np.stack([first, second], axis=1).reshape(-1, 2))
    four = n == 4
    if four.any():
        fi, fj = ci[four], cj[four]
        a, b, c, d = z[fi, fj], z[fi + 1, fj], z[fi + 1, fj + 1], z[fi, fj + 1]
        # a saddle cell: if the centre is on corner a's side, a and c are
        # joined through it and the lines cut off b and d (edges 0+1, 2+3);
        # otherwise they cut off a and c (edges 0+3, 2+1)
        cut_a = (((a + b + c + d) / 4.0 > level) != (a > level))[:, None]
        p = np.stack([ex[four], ey[four]], axis=2)  # (k, 4 edges, 2)
        pairs = [p[:, 0], np.where(cut_a, p[:, 3], p[:, 1]),
                 p[:, 2], np.where(cut_a, p[:, 1], p[:, 3])]
        out.append(np.stack(pairs, axis=1).reshape(-1, 2))
    return np.concatenate(out, axis=0)
