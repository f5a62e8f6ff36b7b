"""Editors built from the engine's :class:`engine.params.Param` specs.

One spec gives the widget (spin box, check box, combo box, list field), its
tooltip (the spec's one-line doc plus the allowed range) and its validation:
a value is accepted exactly when ``Param.check`` accepts it, so the window
and the experiment schema can never disagree.  A refused value is not
applied: the field goes back to the last good value, turns red and its
tooltip (shown at once) says why.

:class:`ParamForm` lays out one editor per key of a ``{name: Param}`` dict,
which is how every optimizer, schedule, activation, initializer and data set
gets its settings panel without any GUI code of its own.
"""
from __future__ import annotations

import math
import re
from typing import Any, Mapping

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (QAbstractSpinBox, QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QPushButton, QSlider, QToolTip, QWidget)

from engine.errors import ExperimentError
from engine.params import Param

from .stepping import log_scale, stepped

_NUMBER_PREFIX = re.compile(r"[+-]?(\d*\.?\d*([eE][+-]?\d*)?)?")
REFUSED_STYLE = "background: #ffd9d9;"
# nicer labels for a few keys
LABELS = {"trainable": "trainable (off = frozen)", "use_bias": "use bias", "n_samples": "points",
          "batch_size": "batch size", "learning_rate": "learning rate", "bn_momentum": "BN momentum",
          "bn_epsilon": "BN epsilon", "l1": "l1", "l2": "l2", "max_norm": "max-norm",
          "clipvalue": "clip value", "clipnorm": "clip norm", "global_clipnorm": "global clip norm",
          "angle": "angle (degrees)"}


def label_for(key: str) -> str:
    return LABELS.get(key, key.replace("_", " "))


def optimizer_params(optimizer_class) -> dict[str, Param]:
    """The settings an optimizer form shows: its learning rate first, then its own
    hyperparameters.  The Train tab and the arena's racers both edit this dict."""
    return {"learning_rate": optimizer_class.learning_rate_param(), **optimizer_class.hyperparameters}


def format_value(value: Any, kind: str = "float") -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v, kind[:-1] if kind.endswith("s") else kind) for v in value)
    if kind == "int" or (isinstance(value, int) and not isinstance(value, float)):
        return str(int(value))
    if isinstance(value, float):
        text = f"{value:.6g}"
        return text
    return str(value)


_UNSET_MEANING = re.compile(r"(?:Empty:|Off:|null =)\s*([^.;]+)")


def unset_meaning(param: Param) -> str | None:
    """What leaving an optional value unset means, when the doc says so ("null = the
    optimizer's learning rate", "Empty: all 10", "Off: as planned")."""
    said = _UNSET_MEANING.search(param.doc)
    return said.group(1).strip() if said else None


def tooltip_for(param: Param, key: str = "") -> str:
    default = "none" if param.default is None else format_value(param.default, param.kind) or "[]"
    return f"{param.doc}\nAllowed: {param.describe_range()}. Default: {default}."


def show_refusal(widget: QWidget, message: str) -> None:
    """Show why a value was refused right at the widget."""
    QToolTip.showText(widget.mapToGlobal(QPoint(0, widget.height())), message, widget)


class ParamEditor(QWidget):
    """Common interface: ``value()``, ``set_value(v)``, ``changed`` (a good value was committed).

    Every editor class defines ``value`` and ``set_value``; one that does not is refused when
    its class is created (Qt's metaclass rules out ``abc.ABC`` here)."""

    changed = Signal()
    REQUIRED = ("value", "set_value")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        missing = [name for name in cls.REQUIRED if not callable(getattr(cls, name, None))]
        if missing:
            raise TypeError(f"{cls.__name__} must define {', '.join(missing)} (see ParamEditor)")

    def __init__(self, param: Param, where: str, parent=None):
        super().__init__(parent)
        self.param = param
        self.where = where
        self.base_tooltip = tooltip_for(param, where)
        self.last_refusal = ""

    def check(self, value):
        """The normalised value, or raise ExperimentError with the reason."""
        return self.param.check(value, self.where)

    def _refuse(self, widget: QWidget, message: str) -> None:
        self.last_refusal = message
        self._shows_refusal = True
        widget.setStyleSheet(REFUSED_STYLE)
        widget.setToolTip(f"Refused: {message}\n\n{self.base_tooltip}")
        show_refusal(widget, f"Refused: {message}")

    def _accept(self, widget: QWidget) -> None:
        self.last_refusal = ""
        if getattr(self, "_shows_refusal", False):
            self._shows_refusal = False
            widget.setStyleSheet("")
            widget.setToolTip(self.base_tooltip)


class NumberSpin(QAbstractSpinBox):
    """A spin box for "int"/"float" Params: typing is free, committing is checked.

    Arrow keys and the wheel follow :mod:`gui.widgets.stepping`, the one
    rule of every tab (a 1-2-5 ladder for learning rates and other scales,
    a fixed step otherwise).
    """

    committed = Signal(object)
    refused = Signal(str)

    def __init__(self, param: Param, where: str, parent=None):
        super().__init__(parent)
        self.param = param
        self.where = where
        self._value = None
        self.setKeyboardTracking(False)
        self.setAccelerated(True)
        self.setMinimumWidth(80)
        self.editingFinished.connect(self._commit_text)

    # -- value ---------------------------------------------------------------------------------

    def value(self):
        return self._value

    def set_value(self, value) -> None:
        self._value = None if value is None else (int(value) if self.param.kind == "int" else float(value))
        self.lineEdit().setText(format_value(self._value, self.param.kind))

    def try_set(self, value) -> str | None:
        """Check and commit ``value``; returns the refusal message or None."""
        try:
            checked = self.param.check(value, self.where)
        except ExperimentError as exc:
            return str(exc)
        changed = checked != self._value
        self.set_value(checked)
        if changed:
            self.committed.emit(self._value)
        return None

    def _parse(self, text: str):
        text = text.strip()
        value = float(text)
        if self.param.kind == "int" and value.is_integer() and abs(value) < 2**62:
            return int(value)
        return value

    def _commit_text(self) -> None:
        text = self.lineEdit().text()
        if text.strip() == format_value(self._value, self.param.kind):
            return
        try:
            value = self._parse(text)
        except ValueError:
            message = f"{self.where} must be {self.param.describe_range()}, got {text!r}"
        else:
            message = self.try_set(value)
        if message:
            self.set_value(self._value)   # refuse: back to the last good value
            self.refused.emit(message)

    # -- QAbstractSpinBox hooks -------------------------------------------------------------------

    def validate(self, text: str, pos: int):
        if not _NUMBER_PREFIX.fullmatch(text.strip()):
            return QValidator.Invalid
        try:
            self.param.check(self._parse(text), self.where)
        except (ValueError, ExperimentError):
            return QValidator.Intermediate
        return QValidator.Acceptable

    def fixup(self, text: str) -> str:
        return format_value(self._value, self.param.kind)

    def stepEnabled(self):
        return QAbstractSpinBox.StepUpEnabled | QAbstractSpinBox.StepDownEnabled

    def stepBy(self, steps: int) -> None:
        self.try_set(stepped(self.param, self._value, steps, self.where))


SLIDER_STEPS = 200


class NumberEditor(ParamEditor):
    """int/float Param; optional ones get an on/off box (off = null) and show
    ``fallback`` (else the default, else a guess from the range) when ticked on.
    With ``slider`` and a bounded range, a slider sits next to the spin box (a
    log slider for log-scale Params); it commits when released."""

    def __init__(self, param: Param, where: str, parent=None, slider: bool = False, fallback=None):
        super().__init__(param, where, parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.enabled_box = None
        if param.optional:
            self.enabled_box = QCheckBox()
            self.enabled_box.setToolTip(f"Off: none. {self.base_tooltip}")
            self.enabled_box.toggled.connect(self._toggled)
            layout.addWidget(self.enabled_box)
        self.spin = NumberSpin(param, where)
        self.spin.setToolTip(self.base_tooltip)
        if param.optional:   # shown while off, in place of a greyed-out number that means nothing
            self.spin.lineEdit().setPlaceholderText(unset_meaning(param) or "off")
        self.spin.committed.connect(self._committed)
        self.spin.refused.connect(lambda msg: self._refuse(self.spin, msg))
        layout.addWidget(self.spin, 1)
        self.slider = None
        if slider and param.low is not None and param.high is not None and not param.optional:
            self.slider = QSlider(Qt.Horizontal)
            self.slider.setRange(0, SLIDER_STEPS)
            self.slider.setToolTip(self.base_tooltip)
            self.slider.setMinimumWidth(70)
            self.slider.sliderReleased.connect(self._slider_released)
            self.slider.valueChanged.connect(self._slider_moved)
            layout.addWidget(self.slider, 1)
            self.spin.committed.connect(lambda _v: self._sync_slider())
        self._fallback = next(v for v in (fallback, param.default, self._guess()) if v is not None)
        self.set_value(param.default)

    # -- slider <-> value ---------------------------------------------------------------------------

    def _bounds(self):
        p = self.param
        lo, hi = float(p.low), float(p.high)
        if log_scale(p):
            lo = max(lo, hi * 1e-6) if lo <= 0 else lo
            return math.log10(lo), math.log10(hi)
        return lo, hi

    def _from_slider(self, position: int):
        lo, hi = self._bounds()
        x = lo + (hi - lo) * position / SLIDER_STEPS
        value = 10 ** x if log_scale(self.param) else x
        if self.param.kind == "int":
            return int(round(value))
        return float(f"{value:.3g}")

    def _sync_slider(self) -> None:
        value = self.spin.value()
        if self.slider is None or value is None:
            return
        lo, hi = self._bounds()
        x = math.log10(value) if log_scale(self.param) and value > 0 else value
        self.slider.blockSignals(True)
        self.slider.setValue(int(round(SLIDER_STEPS * (x - lo) / (hi - lo))) if hi > lo else 0)
        self.slider.blockSignals(False)

    def _slider_moved(self, position: int) -> None:
        value = self._from_slider(position)
        try:
            value = self.param.check(value, self.where)
        except ExperimentError:
            return   # an open bound: the end stop itself is not allowed
        self.spin.set_value(value)                 # shown at once, committed on release
        if not self.slider.isSliderDown():
            self._slider_released()

    def _slider_released(self) -> None:
        if self.spin.value() != self._committed_value:
            self._committed(self.spin.value())

    def _guess(self):
        p = self.param
        if p.low is not None and not p.low_open:
            return p.low if p.low != 0 or p.kind == "int" else (1.0 if p.high is None or p.high >= 1 else p.high / 2)
        if p.low is not None:
            return 1.0 if p.high is None or p.high > 1 else (p.low + p.high) / 2
        return 0

    def value(self):
        if self.enabled_box is not None and not self.enabled_box.isChecked():
            return None
        return self.spin.value()

    def set_value(self, value) -> None:
        self._set_value(value)
        self._committed_value = self.spin.value()
        self._sync_slider()

    def _set_value(self, value) -> None:
        if self.enabled_box is not None:
            self.enabled_box.blockSignals(True)
            self.enabled_box.setChecked(value is not None)
            self.enabled_box.blockSignals(False)
            self.spin.setEnabled(value is not None)
            if value is None:   # the spin keeps a number for when it is ticked on again
                self.spin.set_value(self.spin.value() if self.spin.value() is not None else self._fallback)
                self.spin.lineEdit().clear()
                return
        self.spin.set_value(value)

    def _toggled(self, on: bool) -> None:
        self.spin.setEnabled(on)
        if on:
            self.spin.set_value(self.spin.value() if self.spin.value() is not None else self._fallback)
        else:
            self.spin.lineEdit().clear()
        self.changed.emit()

    def _committed(self, _value) -> None:
        self._committed_value = self.spin.value()
        self._accept(self.spin)
        self.changed.emit()

    def type_text(self, text: str) -> str | None:
        """Commit typed text the way a user would; returns the refusal or None (tests use it)."""
        self.spin.lineEdit().setText(text)
        self.last_refusal = ""
        self.spin._commit_text()
        return self.last_refusal or None


class BoolEditor(ParamEditor):
    def __init__(self, param: Param, where: str, parent=None):
        super().__init__(param, where, parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.box = QCheckBox()
        self.box.setToolTip(self.base_tooltip)
        self.box.toggled.connect(lambda _on: self.changed.emit())
        layout.addWidget(self.box)
        self.auto = None
        if param.optional:  # three states: auto (null), true, false
            self.box.setTristate(True)
            self.box.setToolTip("Partly checked: detect automatically.\n" + self.base_tooltip)
        self.set_value(param.default)

    def value(self):
        if self.param.optional and self.box.checkState() == Qt.PartiallyChecked:
            return None
        return self.box.isChecked()

    def set_value(self, value) -> None:
        self.box.blockSignals(True)
        if value is None and self.param.optional:
            self.box.setCheckState(Qt.PartiallyChecked)
        else:
            self.box.setChecked(bool(value))
        self.box.blockSignals(False)


class ChoiceEditor(ParamEditor):
    """A combo box; ``item_docs`` gives each choice its own tooltip. Optional: first item is "auto"."""

    def __init__(self, param: Param, where: str, parent=None, item_docs: Mapping[str, str] | None = None,
                 none_label: str = "auto"):
        super().__init__(param, where, parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox()
        self.combo.setToolTip(self.base_tooltip)
        if param.optional:
            self.combo.addItem(none_label, None)
            self.combo.setItemData(0, param.doc, Qt.ToolTipRole)
        for choice in param.choices:
            self.combo.addItem(str(choice), choice)
            if item_docs and choice in item_docs:
                self.combo.setItemData(self.combo.count() - 1, item_docs[choice], Qt.ToolTipRole)
        self.combo.currentIndexChanged.connect(lambda _i: self.changed.emit())
        layout.addWidget(self.combo, 1)
        self.set_value(param.default)

    def value(self):
        return self.combo.currentData()

    def set_value(self, value) -> None:
        index = self.combo.findData(value)
        if index < 0:
            index = 0
        self.combo.blockSignals(True)
        self.combo.setCurrentIndex(index)
        self.combo.blockSignals(False)


class TextEditor(ParamEditor):
    """"str", "ints" and "floats" Params in a line edit (lists comma-separated); a
    ``path`` key gets a Browse button."""

    def __init__(self, param: Param, where: str, parent=None, file_filter: str = ""):
        super().__init__(param, where, parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit()
        self.edit.setToolTip(self.base_tooltip)
        if param.optional or param.kind in ("ints", "floats"):
            said = unset_meaning(param)
            self.edit.setPlaceholderText("empty: " + (said or ("none" if param.default is None
                                                               else format_value(param.default, param.kind) or "[]")))
        self.edit.editingFinished.connect(self._commit)
        layout.addWidget(self.edit, 1)
        self.file_filter = file_filter
        if where.endswith(".path"):
            browse = QPushButton("Browse…")
            browse.setToolTip("Choose the file or folder")
            browse.clicked.connect(self._browse)
            layout.addWidget(browse)
        self._value = None
        self.set_value(param.default)

    def _parse(self, text: str):
        text = text.strip()
        if self.param.kind in ("ints", "floats"):
            if not text:
                return None if self.param.optional else []
            parts = [t for t in re.split(r"[,\s]+", text.strip("[]")) if t]
            out = []
            for t in parts:
                try:
                    out.append(float(t) if self.param.kind == "floats" else int(float(t)) if float(t).is_integer()
                               else float(t))
                except ValueError:
                    out.append(t)
            return out
        if not text:
            return None if self.param.optional or self.param.default is None else ""
        if re.fullmatch(r"-?\d+", text):
            try:
                return self.param.check(int(text), self.where)  # e.g. a CSV target column index
            except (ExperimentError, TypeError):
                pass
        return text

    def _commit(self) -> None:
        text = self.edit.text()
        try:
            value = self._parse(text)
            if value is not None or not self.param.optional:
                if value is None and self.param.default is None:
                    pass  # required but empty: left to the whole-experiment check
                else:
                    value = self.param.check(value, self.where)
        except ExperimentError as exc:
            self.edit.setText(format_value(self._value, self.param.kind))
            self._refuse(self.edit, str(exc))
            return
        self._accept(self.edit)
        if value != self._value:
            self._value = value
            self.changed.emit()

    def _browse(self) -> None:
        if self.where.startswith("data.") and "fashion" in self.file_filter:
            path = QFileDialog.getExistingDirectory(self, "Folder with the Fashion-MNIST files")
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Choose a file", "", self.file_filter or "All files (*)")
        if path:
            self.edit.setText(path)
            self._commit()

    def value(self):
        return self._value

    def set_value(self, value) -> None:
        self._value = value
        self.edit.setText(format_value(value, self.param.kind))

    def type_text(self, text: str) -> str | None:
        self.edit.setText(text)
        self.last_refusal = ""
        self._commit()
        return self.last_refusal or None


def make_editor(param: Param, where: str, parent=None, item_docs=None, file_filter: str = "",
                slider: bool = False) -> ParamEditor:
    if param.kind in ("int", "float"):
        return NumberEditor(param, where, parent, slider=slider)
    if param.kind == "bool":
        return BoolEditor(param, where, parent)
    if param.kind == "choice":
        return ChoiceEditor(param, where, parent, item_docs=item_docs)
    return TextEditor(param, where, parent, file_filter=file_filter)


class ParamForm(QWidget):
    """A form with one editor per Param; ``values()`` is the dict the schema expects."""

    changed = Signal()

    def __init__(self, spec: Mapping[str, Param] | None = None, prefix: str = "", parent=None,
                 skip: tuple = (), item_docs: Mapping[str, Mapping[str, str]] | None = None,
                 file_filter: str = "", sliders: bool = False):
        super().__init__(parent)
        self.layout_ = QFormLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.layout_.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.layout_.setLabelAlignment(Qt.AlignRight)
        self.editors: dict[str, ParamEditor] = {}
        self.prefix = prefix
        self.skip = skip
        self.item_docs = item_docs or {}
        self.file_filter = file_filter
        self.sliders = sliders
        if spec:
            self.set_spec(spec)

    def set_spec(self, spec: Mapping[str, Param], values: Mapping[str, Any] | None = None) -> None:
        while self.layout_.rowCount():
            self.layout_.removeRow(0)
        self.editors = {}
        for key, param in spec.items():
            if key in self.skip:
                continue
            editor = make_editor(param, f"{self.prefix}{key}", item_docs=self.item_docs.get(key),
                                 file_filter=self.file_filter, slider=self.sliders)
            editor.changed.connect(self.changed)
            label = QLabel(label_for(key))
            label.setToolTip(editor.base_tooltip)
            self.layout_.addRow(label, editor)
            self.editors[key] = editor
        if values:
            self.set_values(values)
        if not self.editors:
            self.hide()
        elif self.isHidden() and self.parentWidget() is not None:
            self.show()

    def values(self) -> dict:
        return {key: editor.value() for key, editor in self.editors.items()}

    def set_values(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            if key in self.editors:
                self.editors[key].set_value(value)

    def editor(self, key: str) -> ParamEditor:
        return self.editors[key]
