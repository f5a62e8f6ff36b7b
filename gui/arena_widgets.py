"""Building blocks of the optimizer arena tab: number boxes and forms built
from :class:`engine.params.Param` specs, a colour button, compact combo
boxes, and contour lines.

Nothing here knows about optimizers: a form shows whatever Params it is
given (tooltips from ``Param.doc``), so a new optimizer, schedule or surface
hyperparameter appears in the window without touching this file.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtGui import QColor, QValidator
from PySide6.QtWidgets import (QCheckBox, QColorDialog, QComboBox, QDoubleSpinBox, QFormLayout,
                               QLineEdit, QPushButton, QSizePolicy, QSpinBox, QWidget)

from engine.params import Param

_NICE = (1.0, 2.0, 5.0)


def _nice_neighbour(value: float, steps: int) -> float:
    """Step along 1-2-5 values (…, 0.01, 0.02, 0.05, 0.1, …)."""
    if value <= 0:
        return 1e-6 if steps > 0 else value
    exponent = math.floor(math.log10(value))
    ladder = [m * 10.0 ** e for e in range(exponent - 1, exponent + 2) for m in _NICE]
    ladder.sort()
    if steps > 0:
        bigger = [v for v in ladder if v > value * (1 + 1e-9)]
        out = bigger[0]
        return _nice_neighbour(out, steps - 1) if steps > 1 else out
    smaller = [v for v in ladder if v < value * (1 - 1e-9)]
    out = smaller[-1]
    return _nice_neighbour(out, steps + 1) if steps < -1 else out


class NumberBox(QDoubleSpinBox):
    """A spin box for a float Param: shows ``%g``-style text (0.99999,
    1e-08), accepts scientific notation, and on a log-scale Param the arrows
    walk along 1-2-5 values instead of adding a fixed step.  An optional
    Param shows ``special`` text at its lowest value and reads as None."""

    def __init__(self, param: Param, special: str | None = None, parent=None):
        super().__init__(parent)
        self.param = param
        self._log = param.log
        low = param.low if param.low is not None else -1e12
        high = param.high if param.high is not None else 1e12
        if param.low_open and param.low is not None:
            low = param.low + (1e-12 if param.low == 0 else abs(param.low) * 1e-12)
        if param.high_open and param.high is not None:
            high = param.high - 1e-12
        self._special = special if param.optional else None
        if self._special is not None:
            low = 0.0 if param.low is None or param.low >= 0 else param.low
            self.setSpecialValueText(self._special)
        self.setDecimals(12)
        self.setRange(low, high)
        span = (high - low) if math.isfinite(high - low) and high - low < 1e6 else 1.0
        self.setSingleStep(0.01 if span <= 1.0 else (0.1 if span <= 20 else 1.0))
        self.setKeyboardTracking(False)
        self.setAccelerated(True)
        self.setToolTip(f"{param.doc}\nAllowed: {param.describe_range()}.")

    def textFromValue(self, value: float) -> str:
        if self._special is not None and value == self.minimum():
            return self._special
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:
        text = text.strip()
        if self._special is not None and text == self._special:
            return self.minimum()
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        stripped = text.strip()
        if self._special is not None and self._special.startswith(stripped):
            return (QValidator.Acceptable if stripped == self._special else QValidator.Intermediate), text, pos
        try:
            v = float(stripped)
        except ValueError:
            ok_prefix = all(ch in "0123456789.eE+-" for ch in stripped)
            return (QValidator.Intermediate if ok_prefix else QValidator.Invalid), text, pos
        if self.minimum() <= v <= self.maximum():
            return QValidator.Acceptable, text, pos
        return QValidator.Intermediate, text, pos

    def stepBy(self, steps: int) -> None:
        if not self._log or self.value() <= 0:
            super().stepBy(steps)
            return
        self.setValue(min(max(_nice_neighbour(self.value(), steps), self.minimum()), self.maximum()))

    def param_value(self) -> float | None:
        if self._special is not None and self.value() == self.minimum():
            return None
        return float(self.value())

    def set_param_value(self, value) -> None:
        self.setValue(self.minimum() if value is None else float(value))


class ListEdit(QLineEdit):
    """A comma-separated list for "ints"/"floats" Params (e.g. piecewise boundaries)."""

    def __init__(self, param: Param, parent=None):
        super().__init__(parent)
        self.param = param
        self.setPlaceholderText("comma-separated, e.g. 100, 200")
        self.setToolTip(f"{param.doc}\nAllowed: {param.describe_range()}.")

    def param_value(self):
        parts = [p.strip() for p in self.text().split(",") if p.strip()]
        cast = int if self.param.kind == "ints" else float
        out = []
        for p in parts:
            try:
                out.append(cast(float(p)) if cast is int and float(p).is_integer() else cast(p))
            except ValueError:
                out.append(p)  # the schema check names the bad entry
        return out

    def set_param_value(self, value) -> None:
        self.setText(", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in (value or [])))


class ParamForm(QWidget):
    """A form with one widget per Param; ``changed`` fires on every edit."""

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._layout = QFormLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self._widgets: dict[str, QWidget] = {}

    def set_params(self, spec: Mapping[str, Param], values: Mapping[str, Any] | None = None,
                   labels: Mapping[str, str] | None = None, special: Mapping[str, str] | None = None) -> None:
        """Rebuild the form for ``spec`` showing ``values`` (defaults where missing)."""
        while self._layout.rowCount():
            self._layout.removeRow(0)
        self._widgets = {}
        values = values or {}
        for key, param in spec.items():
            widget = self._make(param, (special or {}).get(key))
            self._set(widget, param, values.get(key, param.default))
            label = (labels or {}).get(key, key.replace("_", " "))
            self._layout.addRow(label, widget)
            self._layout.labelForField(widget).setToolTip(param.doc)
            self._widgets[key] = widget
        self.setVisible(bool(spec))

    def _make(self, param: Param, special: str | None) -> QWidget:
        if param.kind == "bool":
            w = QCheckBox()
            w.toggled.connect(self.changed)
        elif param.kind == "choice":
            w = QComboBox()
            w.addItems([str(c) for c in param.choices])
            w.currentIndexChanged.connect(self.changed)
        elif param.kind == "int":
            w = QSpinBox()
            w.setRange(int(param.low) if param.low is not None else -2**31 + 1,
                       int(min(param.high, 2**31 - 1)) if param.high is not None else 2**31 - 1)
            w.setKeyboardTracking(False)
            w.valueChanged.connect(self.changed)
        elif param.kind in ("ints", "floats"):
            w = ListEdit(param)
            w.editingFinished.connect(self.changed)
        elif param.kind == "str":
            w = QLineEdit()
            w.editingFinished.connect(self.changed)
        else:
            w = NumberBox(param, special or "off")
            w.valueChanged.connect(self.changed)
        w.setToolTip(f"{param.doc}\nAllowed: {param.describe_range()}.")
        return w

    def _set(self, widget: QWidget, param: Param, value) -> None:
        widget.blockSignals(True)
        try:
            if isinstance(widget, QCheckBox):
                widget.setChecked(bool(value))
            elif isinstance(widget, QComboBox):
                widget.setCurrentIndex([str(c) for c in param.choices].index(str(value)))
            elif isinstance(widget, QSpinBox):
                widget.setValue(int(value))
            elif isinstance(widget, (NumberBox, ListEdit)):
                widget.set_param_value(value)
            elif isinstance(widget, QLineEdit):
                widget.setText(str(value))
        finally:
            widget.blockSignals(False)

    def values(self) -> dict:
        out = {}
        for key, w in self._widgets.items():
            if isinstance(w, QCheckBox):
                out[key] = w.isChecked()
            elif isinstance(w, QComboBox):
                out[key] = w.currentText()
            elif isinstance(w, QSpinBox):
                out[key] = int(w.value())
            elif isinstance(w, (NumberBox, ListEdit)):
                out[key] = w.param_value()
            elif isinstance(w, QLineEdit):
                out[key] = w.text()
        return out

    def set_values(self, values: Mapping[str, Any], spec: Mapping[str, Param]) -> None:
        for key, value in values.items():
            if key in self._widgets:
                self._set(self._widgets[key], spec[key], value)

    def widget(self, key: str) -> QWidget:
        return self._widgets[key]


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
