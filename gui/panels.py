"""The data, optimizer/schedule and training panels.

Each panel is built from an engine registry and its ``Param`` specs
(``DATASETS``, ``OPTIMIZERS``, ``SCHEDULES``, ``TRAINING_PARAMS``...), so a
new optimizer, schedule or data set appears here without GUI changes.  A
panel edits one or two sections of the experiment dict: ``config()`` returns
them, ``set_config()`` shows them, ``changed`` fires on every accepted edit.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGroupBox, QLabel, QToolButton, QVBoxLayout,
                               QWidget)

from engine.data import DATASETS, load_dataset
from engine.errors import DescentError, ExperimentError
from engine.spec.sections import EARLY_STOPPING_PARAMS, OPTIMIZER_CLIP_PARAMS, TRAINING_PARAMS
from engine.catalog.optimizers import OPTIMIZERS
from engine.params import Param
from engine.catalog.schedules import SCHEDULES

from .augment_panel import AugmentPanel
from .widgets.params import NumberEditor, ParamForm, optimizer_params

CLASS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf"]
SEED_PARAM = Param(42, "Random seed: initial weights, data generation, batch order and dropout masks. "
                       "Same seed, same run.", "int", 0, 2**32 - 1)
FILE_FILTERS = {"csv": "CSV files (*.csv *.txt *.tsv);;All files (*)", "npz": "NumPy archives (*.npz);;All files (*)",
                "fashion_mnist": "fashion"}


def first_line(text: str | None) -> str:
    """The first paragraph of a docstring, without reStructuredText markup."""
    text = (text or "").strip().split("\n\n")[0].replace("\n", " ")
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)
    return re.sub(r"``([^`]+)``", r"\1", " ".join(text.split()))


def section_box(title: str, *widgets: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(6, 6, 6, 6)
    for w in widgets:
        layout.addWidget(w)
    return box


def small_plot(height: int = 120) -> pg.PlotWidget:
    plot = pg.PlotWidget()
    plot.setMinimumHeight(height)
    plot.setMaximumHeight(int(height * 1.8))
    plot.setMenuEnabled(False)
    plot.hideButtons()
    item = plot.getPlotItem()
    item.getViewBox().setMouseEnabled(x=False, y=False)
    font = QFont()
    font.setPointSize(7)
    for axis in ("left", "bottom"):
        item.getAxis(axis).enableAutoSIPrefix(False)
        item.getAxis(axis).setTickFont(font)
    return plot


def picker_column(owner: QWidget, label: str, combo: QComboBox, widgets, margin: int = 0) -> QVBoxLayout:
    """``owner``'s layout: a labelled picker on top, then ``widgets`` one under another."""
    layout = QVBoxLayout(owner)
    layout.setContentsMargins(margin, margin, margin, margin)
    top = QFormLayout()
    top.addRow(label, combo)
    layout.addLayout(top)
    for widget in widgets:
        layout.addWidget(widget)
    return layout


# ======================================================================= data

@dataclass(frozen=True)
class DataInfo:
    """What the rest of the window needs to know about the loaded data."""
    name: str
    n_inputs: int
    task: str
    n_classes: int
    n_targets: int
    n_train: int
    n_val: int
    class_names: tuple
    image_shape: tuple | None


class _LoadSignals(QObject):
    # ticket, (Dataset or None, error message or None).  One tuple: PySide6 mis-counts
    # references of a bare None sent through a queued ``object`` argument.
    loaded = Signal(int, object)


class _LoadJob(QRunnable):
    def __init__(self, ticket: int, config: dict, seed: int, signals: _LoadSignals):
        super().__init__()
        self.ticket, self.config, self.seed, self.signals = ticket, config, seed, signals

    def run(self) -> None:
        try:
            dataset = load_dataset(self.config, self.seed)
        except DescentError as exc:
            self.signals.loaded.emit(self.ticket, (None, str(exc)))
        except Exception as exc:  # unexpected: still report, never crash the pool thread
            self.signals.loaded.emit(self.ticket, (None, f"{type(exc).__name__}: {exc}"))
        else:
            self.signals.loaded.emit(self.ticket, (dataset, None))


class DataPanel(QWidget):
    """Pick a data set, set its parameters, see a preview (loaded off the GUI thread)."""

    changed = Signal()
    data_loaded = Signal(object)   # DataInfo, or None when the data could not be loaded

    def __init__(self, parent=None):
        super().__init__(parent)
        self.seed = 42
        self.info: DataInfo | None = None
        self.dataset = None
        self._ticket = 0
        self._signals = _LoadSignals()
        self._signals.loaded.connect(self._on_loaded)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._debounce = QTimer(self, singleShot=True, interval=250)
        self._debounce.timeout.connect(self.reload)

        self.combo = QComboBox()
        for name, spec in DATASETS.items():
            self.combo.addItem(f"{name}  ({spec.kind})", name)
            self.combo.setItemData(self.combo.count() - 1, spec.doc, Qt.ToolTipRole)
        self.combo.currentIndexChanged.connect(self._dataset_changed)
        self.doc = QLabel(wordWrap=True)
        self.doc.setStyleSheet("color: #555;")
        self.form = ParamForm(prefix="data.", sliders=True)   # noise, size... as sliders
        self.form.changed.connect(self._edited)
        self.status = QLabel(wordWrap=True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.preview = small_plot(170)
        self.preview.setMaximumHeight(16777215)   # the preview takes the panel's spare height
        self.preview.setAspectLocked(False)
        self.augment = AugmentPanel()   # data.augment: its own file, gui/augment_panel.py
        self.augment.changed.connect(self.changed)
        layout = picker_column(self, "data set", self.combo, (self.doc, self.form, self.status), margin=4)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.augment)
        self._dataset_changed()

    # -- config --------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.combo.currentData()

    def config(self) -> dict:
        return {"name": self.name, **self.form.values(), **self.augment.config()}

    def set_config(self, config: dict) -> None:
        self.combo.blockSignals(True)
        self.combo.setCurrentIndex(max(0, self.combo.findData(config["name"])))
        self.combo.blockSignals(False)
        self._build_form()
        self.form.set_values({k: v for k, v in config.items() if k != "name"})
        self.augment.set_config(config.get("augment"))
        self.reload()

    def set_seed(self, seed: int) -> None:
        if seed != self.seed:
            self.seed = seed
            self._debounce.start()

    def _build_form(self) -> None:
        spec = DATASETS.get(self.name)
        self.form.file_filter = FILE_FILTERS.get(self.name, "")
        self.form.set_spec(spec.params)
        self.doc.setText(spec.doc)

    def _dataset_changed(self) -> None:
        self._build_form()
        self.changed.emit()
        self.reload()

    def _edited(self) -> None:
        self.changed.emit()
        self._debounce.start()

    # -- loading and preview --------------------------------------------------------------------

    def reload(self) -> None:
        self._debounce.stop()
        self._ticket += 1
        config = self.config()
        spec = DATASETS.get(self.name)
        if spec.kind == "file" and not config.get("path"):
            self._show_error("Choose a file (Browse…) to load this data set.")
            return
        self.status.setText("loading…")
        self._pool.start(_LoadJob(self._ticket, config, self.seed, self._signals))

    def wait_loaded(self, msecs: int = 30_000) -> None:
        self._pool.waitForDone(msecs)

    def _show_error(self, message: str) -> None:
        self.info, self.dataset = None, None
        self.status.setText(f"<span style='color:#b00020'>{message}</span>")
        self.preview.clear()
        self.augment.set_dataset(None)
        self.data_loaded.emit(None)

    def _on_loaded(self, ticket: int, payload) -> None:
        dataset, error = payload
        if ticket != self._ticket:
            return  # a newer request is on its way
        if dataset is None:
            self._show_error(error)
            return
        d = dataset
        n_targets = d.y_train.shape[1] if d.y_train.ndim == 2 else 1
        self.dataset = d
        self.info = DataInfo(self.name, d.n_features, d.task, d.n_classes, n_targets, len(d.x_train),
                             len(d.x_val), tuple(d.class_names), d.image_shape)
        what = (f"{d.n_classes} classes" if d.task == "classification" else d.task)
        self.status.setText(f"{len(d.x_train):,} training / {len(d.x_val):,} validation / {len(d.x_test):,} test "
                            f"examples · {d.n_features} input features · {what}")
        self._draw_preview(d)
        self.augment.set_dataset(d)
        self.data_loaded.emit(self.info)

    def _draw_preview(self, d) -> None:
        plot = self.preview
        plot.clear()
        item = plot.getPlotItem()
        if d.image_shape is not None and len(d.image_shape) == 2:
            h, w = d.image_shape
            n = min(32, len(d.x_train))
            images = d.to_original(d.x_train[:n]).reshape(n, h, w)
            cols = 8
            rows = math.ceil(n / cols)
            mosaic = np.full((rows * (h + 2), cols * (w + 2)), float(images.min()), dtype=np.float32)
            for k in range(n):
                r, c = divmod(k, cols)
                mosaic[r * (h + 2):r * (h + 2) + h, c * (w + 2):c * (w + 2) + w] = images[k]
            img = pg.ImageItem(mosaic[::-1])
            img.setLevels((float(mosaic.max()), float(mosaic.min())))  # dark clothes on white
            plot.addItem(img)
            item.hideAxis("left")
            item.hideAxis("bottom")
            plot.setAspectLocked(True)
            plot.autoRange(padding=0.0)
            return
        item.showAxis("left")
        item.showAxis("bottom")
        plot.setAspectLocked(False)
        x = d.to_original(d.x_train)
        if x.shape[1] == 2 and d.task == "classification":
            y = np.asarray(d.y_train)
            brushes = [pg.mkBrush(CLASS_COLORS[int(c) % len(CLASS_COLORS)]) for c in y[:3000]]
            plot.addItem(pg.ScatterPlotItem(x[:3000, 0], x[:3000, 1], size=4, pen=None, brush=brushes))
            item.setLabel("bottom", d.feature_names[0] if d.feature_names else "x1")
            item.setLabel("left", d.feature_names[1] if len(d.feature_names) > 1 else "x2")
            plot.setAspectLocked(True)
        elif x.shape[1] == 1 and d.task == "regression":
            plot.addItem(pg.ScatterPlotItem(x[:, 0], np.asarray(d.y_train)[:, 0], size=3, pen=None,
                                            brush=pg.mkBrush(CLASS_COLORS[0])))
            item.setLabel("bottom", "x")
            item.setLabel("left", "y (target)")
        else:
            text = pg.TextItem(f"{x.shape[1]} features: no 2-D preview", color="#555", anchor=(0.5, 0.5))
            plot.addItem(text)
        plot.autoRange()


# ================================================================== optimizer

class OptimizerPanel(QWidget):
    """Optimizer (only its own hyperparameters), clipping, schedule and an LR preview."""

    changed = Signal()
    learning_rate_changed = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plan = (1000, 32, 10, None)  # n_train, batch_size, epochs, max_steps
        self.combo = QComboBox()
        for name, cls in OPTIMIZERS.items():
            self.combo.addItem(cls.title, name)   # the entry's title; the data is the schema name
            self.combo.setItemData(self.combo.count() - 1, first_line(cls.__doc__) or name, Qt.ToolTipRole)
        self.combo.currentIndexChanged.connect(self._optimizer_changed)
        self.doc = QLabel(wordWrap=True)
        self.doc.setStyleSheet("color: #555;")
        self.form = ParamForm(prefix="optimizer.")
        self.form.changed.connect(self._edited)
        self.clip_form = ParamForm(OPTIMIZER_CLIP_PARAMS, prefix="optimizer.")
        self.clip_form.changed.connect(self._edited)
        self.schedule_combo = QComboBox()
        for name, cls in SCHEDULES.items():
            self.schedule_combo.addItem(name, name)
            self.schedule_combo.setItemData(self.schedule_combo.count() - 1, first_line(cls.__doc__) or name,
                                            Qt.ToolTipRole)
        self.schedule_combo.currentIndexChanged.connect(self._schedule_changed)
        self.schedule_form = ParamForm(prefix="schedule.")
        self.schedule_form.changed.connect(self._edited)
        self.schedule_error = QLabel(wordWrap=True)
        self.schedule_error.setStyleSheet("color: #b00020;")
        self.preview = small_plot(140)
        item = self.preview.getPlotItem()
        item.setLabel("left", "learning rate")
        item.setLabel("bottom", "step")
        item.setTitle("planned learning rate", size="9pt")
        self.preview_curve = self.preview.plot(pen=pg.mkPen("#1f77b4", width=1.5))

        opt_box = QWidget()
        picker_column(opt_box, "optimizer", self.combo, (self.doc, self.form))
        sched_box = QWidget()
        picker_column(sched_box, "schedule", self.schedule_combo,
                      (self.schedule_form, self.schedule_error, self.preview))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(section_box("Optimizer", opt_box))
        layout.addWidget(section_box("Gradient clipping (tick to enable)", self.clip_form))
        layout.addWidget(section_box("Learning-rate schedule", sched_box))
        layout.addStretch(1)
        self._optimizer_changed()
        self._schedule_changed()

    # -- config --------------------------------------------------------------------------------

    def config(self) -> tuple[dict, dict]:
        optimizer = {"name": self.combo.currentData(), **self.form.values(), **self.clip_form.values()}
        schedule = {"name": self.schedule_combo.currentData(), **self.schedule_form.values()}
        return optimizer, schedule

    def set_config(self, optimizer: dict, schedule: dict) -> None:
        for combo, name in ((self.combo, optimizer["name"]), (self.schedule_combo, schedule["name"])):
            combo.blockSignals(True)
            combo.setCurrentIndex(max(0, combo.findData(name)))
            combo.blockSignals(False)
        self._build_optimizer_form()
        self.form.set_values(optimizer)
        self.clip_form.set_values(optimizer)
        self.schedule_form.set_spec(SCHEDULES.get(schedule["name"]).hyperparameters,
                                    {k: v for k, v in schedule.items() if k != "name"})
        self.update_preview()
        self.learning_rate_changed.emit(self.learning_rate())

    def learning_rate(self) -> float:
        return self.form.values()["learning_rate"]

    def set_learning_rate(self, value: float) -> None:
        editor = self.form.editor("learning_rate")
        if editor.value() != value:
            editor.set_value(value)
            self.update_preview()
            self.changed.emit()

    def set_plan(self, n_train: int, batch_size: int, epochs: int, max_steps) -> None:
        self.plan = (n_train, batch_size, epochs, max_steps)
        self.update_preview()

    # -- reactions -----------------------------------------------------------------------------

    def _build_optimizer_form(self) -> None:
        cls = OPTIMIZERS.get(self.combo.currentData())
        self.form.set_spec(optimizer_params(cls))
        self.doc.setText(first_line(cls.__doc__))

    def _optimizer_changed(self) -> None:
        self._build_optimizer_form()   # the usual defaults of the new optimizer
        self.update_preview()
        self.learning_rate_changed.emit(self.learning_rate())
        self.changed.emit()

    def _schedule_changed(self) -> None:
        self.schedule_form.set_spec(SCHEDULES.get(self.schedule_combo.currentData()).hyperparameters)
        self.update_preview()
        self.changed.emit()

    def _edited(self) -> None:
        self.update_preview()
        self.learning_rate_changed.emit(self.learning_rate())
        self.changed.emit()

    def update_preview(self) -> None:
        """The learning rate over the planned run, computed by the engine's schedule."""
        n_train, batch_size, epochs, max_steps = self.plan
        steps_per_epoch = max(1, math.ceil(n_train / max(1, min(batch_size, n_train))))
        total = epochs * steps_per_epoch if max_steps is None else min(epochs * steps_per_epoch, max_steps)
        _, config = self.config()
        try:
            cls = SCHEDULES.get(config["name"])
            schedule = cls(**{k: v for k, v in config.items() if k != "name"})
            schedule.start(self.learning_rate(), max(1, total), steps_per_epoch)
            stride = max(1, total // 400)
            steps = np.arange(0, max(1, total), stride)
            rates = np.concatenate([schedule.learning_rates(int(s), 1) for s in steps]) if stride > 1 \
                else schedule.learning_rates(0, max(1, total))
        except (ExperimentError, ValueError) as exc:
            self.schedule_error.setText(str(exc))
            self.schedule_error.show()
            self.preview_curve.setData([], [])
            return
        self.schedule_error.hide()
        self.preview_curve.setData(steps, rates)
        # from zero, with headroom: a constant rate autoranged alone sat on a -0.4..0.4 axis, like zero
        finite = np.asarray(rates, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        top = float(finite.max()) if len(finite) else 1.0
        view = self.preview.getPlotItem().getViewBox()
        view.setYRange(0.0, top * 1.15 if top > 0 else 1.0, padding=0)
        view.setXRange(0, max(1, total), padding=0.02)
        note = " (performance scheduling reacts to the validation loss: shown flat)" \
            if config["name"] == "performance" else ""
        self.preview.getPlotItem().setTitle(f"planned learning rate over {total:,} steps{note}", size="9pt")

    def schedule_problem(self) -> str | None:
        return self.schedule_error.text() if self.schedule_error.isVisibleTo(self) else None


# =================================================================== training

class TrainingPanel(QWidget):
    """Epochs, batch size, early stopping, seed (and the advanced keys)."""

    changed = Signal()
    MAIN = ("epochs", "batch_size", "shuffle")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.seed = NumberEditor(SEED_PARAM, "seed")
        self.seed.changed.connect(self.changed)
        self.form = ParamForm({k: p for k, p in TRAINING_PARAMS.items() if k in self.MAIN}, prefix="training.")
        self.form.changed.connect(self.changed)
        self.es_box = QCheckBox("stop early when the monitored metric stops improving")
        self.es_box.setToolTip(TRAINING_PARAMS["early_stopping"].doc)
        self.es_form = ParamForm(EARLY_STOPPING_PARAMS, prefix="training.early_stopping.")
        self.es_form.changed.connect(self.changed)
        self.es_box.toggled.connect(self._es_toggled)
        self.advanced = ParamForm({k: p for k, p in TRAINING_PARAMS.items()
                                   if k not in self.MAIN and k != "early_stopping"}, prefix="training.")
        self.advanced.changed.connect(self.changed)
        toggle = QToolButton(text="Advanced ▸", checkable=True)
        toggle.setStyleSheet("QToolButton { border: none; color: #1f4e99; }")
        toggle.toggled.connect(lambda on: (self.advanced.setVisible(on),
                                           toggle.setText("Advanced ▾" if on else "Advanced ▸")))
        seed_row = QFormLayout()
        seed_row.addRow("seed", self.seed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.form)
        layout.addLayout(seed_row)
        layout.addWidget(section_box("Early stopping", self.es_box, self.es_form))
        layout.addWidget(toggle, 0, Qt.AlignLeft)
        layout.addWidget(self.advanced)
        layout.addStretch(1)
        self.advanced.hide()
        self._es_toggled(False)

    def _es_toggled(self, on: bool) -> None:
        self.es_form.setEnabled(on)
        self.changed.emit()

    def config(self) -> tuple[dict, int]:
        training = {**self.form.values(), **self.advanced.values()}
        training["early_stopping"] = self.es_form.values() if self.es_box.isChecked() else None
        return training, self.seed.value()

    def set_config(self, training: dict, seed: int) -> None:
        self.form.set_values(training)
        self.advanced.set_values(training)
        es = training.get("early_stopping")
        self.es_box.blockSignals(True)
        self.es_box.setChecked(es is not None)
        self.es_box.blockSignals(False)
        self.es_form.setEnabled(es is not None)
        if es is not None:
            self.es_form.set_values(es)
        self.seed.set_value(seed)
