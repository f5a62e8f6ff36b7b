"""The optimizer arena tab: optimizers race across a 2-D loss surface.

The window's main view trains networks; this tab makes the book's pictures
of momentum, Nesterov, AdaGrad, RMSProp and Adam (Figures 11-6 and 11-7)
live.  All optimizer arithmetic happens in :mod:`engine.arena`, which drives
the network engine's own optimizers; this module only edits settings, asks
the arena to step, and draws what it reports.  A race step costs
microseconds, so a QTimer on the GUI thread is all the machinery needed.

Layout: settings on the left (lesson preset, surface, start, noise, racers);
the contour map in the middle (click to move the start); on the right the
loss of every racer against the step (log scale) and a live table.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFileDialog, QFormLayout,
                               QFrame, QGraphicsItem, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QListWidget, QListWidgetItem, QMessageBox, QPushButton, QScrollArea,
                               QSizePolicy, QSlider, QSpinBox, QSplitter, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from engine.arena import (MAX_RACERS, Arena, RacerSpec, arena_preset_paths, load_arena_preset,
                          suggested_learning_rate)
from engine.errors import DescentError
from engine.experiment import OPTIMIZER_CLIP_PARAMS
from engine.optimizers import OPTIMIZERS
from engine.params import Param
from engine.schedules import SCHEDULES
from engine.surfaces import SURFACES, make_surface

from .arena_widgets import ColorButton, NumberBox, ParamForm, contour_segments

# Importing the gui package has already applied gui.compat's guard against
# the PySide6 6.12.0 / Python 3.11 reference-count bug this tab would
# otherwise trigger within seconds of animation.

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22"]
OPTIMIZER_TITLES = {
    "sgd": "Gradient descent (SGD)", "momentum": "Momentum", "nesterov": "Nesterov momentum (NAG)",
    "adagrad": "AdaGrad", "rmsprop": "RMSProp", "adam": "Adam", "nadam": "Nadam", "adamw": "AdamW",
    "adamax": "AdaMax", "ftrl": "FTRL",
}
ARROW_SCALE = 3.0        # velocity arrows are drawn this many times their length
ELLIPSE_FRACTION = 0.05  # the step-scale ellipse's larger semi-axis, as a share of the view width
FRAME_MS = 33            # timer interval while running (about 30 frames per second)
TABLE_INTERVAL = 0.25    # seconds between table updates while running
GRID = 320               # contour map resolution (over the padded box)
MAP_PADDING = 0.4        # the surface is drawn this share of the view beyond each edge
CONTOUR_LEVELS = 14
FINISH_LOSS = 1e-6       # the table's last column: first step below this loss (header says 1e-6)
LOSS_FLOOR = 1e-20       # losses are drawn no lower than this on the log plot
LOSS_CEILING = 1e3       # ... and no higher than this times the highest starting loss
COLUMNS = ["", "Racer", "Step", "Loss", "Distance to minimum", "Step / gradient  |Δθ|/|g|",
           "Step scale x", "Step scale y", "Velocity |v|", "Loss < 1e-6 at step"]
COLUMN_TIPS = [
    "", "Label and optimizer",
    "Optimizer updates taken",
    "Loss at the current position (every surface's minimum is 0)",
    "Distance from the current position to the nearest minimum",
    "Effective step size |Δθ| / |g| of the last step: how far it moved per unit of gradient",
    "Per-coordinate learning rate along x: the step a small gradient along x would produce, "
    "divided by that gradient. Equal x and y for SGD and momentum; adaptive methods make it "
    "larger where gradients have been small.",
    "Per-coordinate learning rate along y (see Step scale x)",
    "Length of the step the racer would take next if the gradient were zero: how far its "
    "momentum carries it (0 for optimizers without momentum)",
    f"First step at which the loss fell below {FINISH_LOSS:g}",
]


def _speed_steps(slider_value: int) -> int:
    """Slider 0..30 -> 1..1000 steps per frame, logarithmically."""
    return max(1, int(round(10 ** (slider_value / 10))))


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if not math.isfinite(value):
        return "—"
    return f"{value:.{digits}g}"


def _compact(combo: QComboBox) -> None:
    """Let a combo box be narrower than its longest entry (the settings
    column has a fixed width)."""
    combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(12)
    combo.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)


def _optimizer_label(name: str) -> str:
    return OPTIMIZER_TITLES.get(name, name)


# ------------------------------------------------------------ racer editor
class RacerEditor(QGroupBox):
    """Edits one racer: label, colour, optimizer and its hyperparameters,
    schedule and clipping.  ``changed`` fires after every edit."""

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__("Selected racer", parent)
        self._surface = make_surface("bowl")
        layout = QVBoxLayout(self)
        top = QFormLayout()
        self.label_edit = QLineEdit()
        self.label_edit.setToolTip("Name shown in the table and the legend")
        self.color_button = ColorButton()
        row = QHBoxLayout()
        row.addWidget(self.label_edit, 1)
        row.addWidget(self.color_button)
        top.addRow("Label", row)
        self.optimizer_combo = QComboBox()
        for name, cls in OPTIMIZERS.items():
            self.optimizer_combo.addItem(_optimizer_label(name), name)
            self.optimizer_combo.setItemData(self.optimizer_combo.count() - 1,
                                             (cls.__doc__ or name).strip(), Qt.ToolTipRole)
        _compact(self.optimizer_combo)
        top.addRow("Optimizer", self.optimizer_combo)
        self.lr_box = NumberBox(Param(0.01, "Learning rate η: the step size of each update "
                                            "(the schedule starts from it).",
                                      low=0.0, low_open=True, high=1e3, log=True))
        top.addRow("Learning rate", self.lr_box)
        layout.addLayout(top)
        self.hyper_form = ParamForm()
        layout.addWidget(self.hyper_form)
        sched = QFormLayout()
        self.schedule_combo = QComboBox()
        for name, cls in SCHEDULES.items():
            self.schedule_combo.addItem(name, name)
            self.schedule_combo.setItemData(self.schedule_combo.count() - 1,
                                            (cls.__doc__ or name).strip(), Qt.ToolTipRole)
        self.schedule_combo.setToolTip("Learning-rate schedule (one step of the arena is one "
                                       "optimizer update; one epoch is one step)")
        _compact(self.schedule_combo)
        sched.addRow("Schedule", self.schedule_combo)
        layout.addLayout(sched)
        self.schedule_form = ParamForm()
        layout.addWidget(self.schedule_form)
        self.clip_form = ParamForm()
        self.clip_form.set_params(OPTIMIZER_CLIP_PARAMS, {},
                                  labels={"clipvalue": "clip value", "clipnorm": "clip norm",
                                          "global_clipnorm": "global clip norm"})
        clip_box = QGroupBox("Gradient clipping")
        clip_box.setToolTip("Applied to the gradient before the optimizer sees it, with the same "
                            "kernel the training loop uses. In 2-D, clip norm and global clip norm "
                            "are the same thing.")
        clip_layout = QVBoxLayout(clip_box)
        clip_layout.setContentsMargins(6, 2, 6, 2)
        clip_layout.addWidget(self.clip_form)
        layout.addWidget(clip_box)

        self.label_edit.editingFinished.connect(self.changed)
        # bound methods, not lambdas: with PySide6 6.12 a lambda slot that
        # captures self breaks the teardown of a discarded editor
        self.color_button.color_changed.connect(self._color_changed)
        self.optimizer_combo.currentIndexChanged.connect(self._optimizer_picked)
        self.lr_box.valueChanged.connect(self.changed)
        self.hyper_form.changed.connect(self.changed)
        self.schedule_combo.currentIndexChanged.connect(self._schedule_picked)
        self.schedule_form.changed.connect(self.changed)
        self.clip_form.changed.connect(self.changed)

    def set_surface(self, surface) -> None:
        self._surface = surface

    def _color_changed(self, _color: str) -> None:
        self.changed.emit()

    def _optimizer_picked(self) -> None:
        name = self.optimizer_combo.currentData()
        cls = OPTIMIZERS.get(name)
        self.hyper_form.set_params(cls.hyperparameters)
        self.lr_box.blockSignals(True)
        self.lr_box.setValue(suggested_learning_rate(self._surface, name))
        self.lr_box.blockSignals(False)
        old = self.label_edit.text()
        if not old or old in {_optimizer_label(n) for n in OPTIMIZERS} or old.startswith("Momentum"):
            self.label_edit.setText(_optimizer_label(name))
        self.changed.emit()

    def _schedule_picked(self) -> None:
        cls = SCHEDULES.get(self.schedule_combo.currentData())
        self.schedule_form.set_params(cls.hyperparameters, special={"max_lr": "= learning rate"})
        self.changed.emit()

    def set_spec(self, spec: RacerSpec, color: str) -> None:
        widgets = (self.label_edit, self.color_button, self.optimizer_combo, self.lr_box,
                   self.schedule_combo)
        for w in widgets:
            w.blockSignals(True)
        try:
            self.label_edit.setText(spec.label)
            self.color_button.set_color(color)
            name = spec.optimizer["name"]
            self.optimizer_combo.setCurrentIndex(self.optimizer_combo.findData(name))
            cls = OPTIMIZERS.get(name)
            self.hyper_form.set_params(cls.hyperparameters, spec.optimizer)
            self.lr_box.setValue(spec.optimizer["learning_rate"])
            sched_name = spec.schedule.get("name", "constant")
            self.schedule_combo.setCurrentIndex(self.schedule_combo.findData(sched_name))
            self.schedule_form.set_params(SCHEDULES.get(sched_name).hyperparameters, spec.schedule,
                                          special={"max_lr": "= learning rate"})
            self.clip_form.set_values({k: spec.clip.get(k) for k in OPTIMIZER_CLIP_PARAMS},
                                      OPTIMIZER_CLIP_PARAMS)
        finally:
            for w in widgets:
                w.blockSignals(False)

    def spec(self) -> RacerSpec:
        optimizer = {"name": self.optimizer_combo.currentData(), "learning_rate": self.lr_box.value(),
                     **self.hyper_form.values()}
        schedule = {"name": self.schedule_combo.currentData(), **self.schedule_form.values()}
        clip = {k: v for k, v in self.clip_form.values().items() if v is not None}
        return RacerSpec(self.label_edit.text().strip() or _optimizer_label(optimizer["name"]),
                         optimizer, schedule, clip, self.color_button.color())


# ---------------------------------------------------------------- the tab
class ArenaTab(QWidget):
    """The optimizer arena.  Usable standalone (``ArenaTab().show()``).

    Scripting and tests use: :meth:`load_preset`, :meth:`set_surface`,
    :meth:`set_start`, :meth:`set_racers`, :meth:`step_race`, :meth:`run`,
    :meth:`pause`, :meth:`reset`, :meth:`export_png`, :meth:`export_csv`
    and the :attr:`arena` being raced.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self.arena: Arena | None = None
        self._surface = make_surface("bowl")
        self._start = tuple(self._surface.start)
        self._specs: list[RacerSpec] = []
        self._updating = False
        self._table_time = 0.0
        self._racer_items: list[dict] = []
        self._timer = QTimer(self)
        self._timer.setInterval(FRAME_MS)
        self._timer.timeout.connect(self._tick)

        self._build_ui()
        presets = arena_preset_paths()
        if presets:
            self.load_preset(next(iter(presets)))
        else:
            self.set_racers([RacerSpec("Gradient descent", {"name": "sgd", "learning_rate": 1.0},
                                       color=PALETTE[0])])

    # ================================================================ UI
    def _build_ui(self) -> None:
        outer = QHBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        splitter = QSplitter(Qt.Horizontal)
        outer.addWidget(splitter)
        splitter.addWidget(self._build_settings())
        splitter.addWidget(self._build_race_area())
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([360, 1200])

    def _build_settings(self) -> QWidget:
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(2, 2, 6, 2)

        lesson = QGroupBox("Lesson")
        lesson_layout = QVBoxLayout(lesson)
        self.preset_combo = QComboBox()
        self.preset_combo.setToolTip("Ready-made races from chapter 11; they set everything below")
        for name, path in arena_preset_paths().items():
            try:
                title = load_arena_preset(path).title
            except DescentError:
                continue
            self.preset_combo.addItem(title, name)
        self.preset_combo.addItem("(your own race)", None)
        self.preset_combo.activated.connect(self._preset_picked)
        _compact(self.preset_combo)
        lesson_layout.addWidget(self.preset_combo)
        self.explanation = QLabel()
        self.explanation.setWordWrap(True)
        self.explanation.setTextFormat(Qt.PlainText)
        self.explanation.setFrameShape(QFrame.StyledPanel)
        self.explanation.setStyleSheet("QLabel { background: #fbf7e6; padding: 6px; color: #222; }")
        self.explanation.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        lesson_layout.addWidget(self.explanation)
        layout.addWidget(lesson)

        surface_box = QGroupBox("Surface")
        s_layout = QVBoxLayout(surface_box)
        self.surface_combo = QComboBox()
        for name, cls in SURFACES.items():
            self.surface_combo.addItem(cls.title, name)
            self.surface_combo.setItemData(self.surface_combo.count() - 1, cls.description, Qt.ToolTipRole)
        self.surface_combo.currentIndexChanged.connect(self._surface_picked)
        _compact(self.surface_combo)
        s_layout.addWidget(self.surface_combo)
        self.surface_form = ParamForm()
        self.surface_form.changed.connect(self._surface_params_changed)
        s_layout.addWidget(self.surface_form)
        start_form = QFormLayout()
        start_row = QHBoxLayout()
        coordinate = Param(0.0, "Starting coordinate; you can also click on the map.", low=-1e6, high=1e6)
        self.start_x = NumberBox(coordinate)
        self.start_y = NumberBox(coordinate)
        for box in (self.start_x, self.start_y):
            box.setSingleStep(0.1)
            box.valueChanged.connect(self._start_edited)
            start_row.addWidget(box)
        start_form.addRow("Start x, y", start_row)
        self.noise_box = NumberBox(Param(0.0, "Standard deviation of Gaussian noise added to every "
                                              "gradient component, like the noise of mini-batch "
                                              "gradients. All racers get the same noise.", low=0.0,
                                         high=1e4))
        self.noise_box.valueChanged.connect(self._race_settings_changed)
        self.seed_box = QSpinBox()
        self.seed_box.setRange(0, 2**31 - 1)
        self.seed_box.setToolTip("Seed of the gradient noise (same seed, same race)")
        self.seed_box.valueChanged.connect(self._race_settings_changed)
        noise_row = QHBoxLayout()
        noise_row.addWidget(self.noise_box, 1)
        noise_row.addWidget(QLabel("seed"))
        noise_row.addWidget(self.seed_box)
        start_form.addRow("Gradient noise", noise_row)
        s_layout.addLayout(start_form)
        self.note_label = QLabel()
        self.note_label.setWordWrap(True)
        self.note_label.setStyleSheet("QLabel { color: #555; font-style: italic; }")
        self.note_label.hide()
        s_layout.addWidget(self.note_label)
        layout.addWidget(surface_box)

        racers_box = QGroupBox(f"Racers (up to {MAX_RACERS})")
        r_layout = QVBoxLayout(racers_box)
        self.racer_list = QListWidget()
        self.racer_list.setIconSize(QSize(14, 14))
        self.racer_list.setMaximumHeight(110)
        self.racer_list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.racer_list.currentRowChanged.connect(self._racer_selected)
        r_layout.addWidget(self.racer_list)
        buttons = QHBoxLayout()
        self.add_button = QPushButton("Add")
        self.add_button.setToolTip("Add a racer (a different optimizer with a sensible learning rate)")
        self.copy_button = QPushButton("Duplicate")
        self.copy_button.setToolTip("Add a copy of the selected racer, e.g. to compare two learning rates")
        self.remove_button = QPushButton("Remove")
        self.add_button.clicked.connect(self.add_racer)
        self.copy_button.clicked.connect(self._duplicate_racer)
        self.remove_button.clicked.connect(self._remove_racer)
        for b in (self.add_button, self.copy_button, self.remove_button):
            buttons.addWidget(b)
        r_layout.addLayout(buttons)
        self.editor = RacerEditor()
        self.editor.changed.connect(self._racer_edited)
        r_layout.addWidget(self.editor)
        layout.addWidget(racers_box)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("QLabel { color: #b00020; }")
        self.error_label.hide()
        layout.addWidget(self.error_label)
        export = QHBoxLayout()
        self.png_button = QPushButton("Export picture…")
        self.csv_button = QPushButton("Export paths…")
        self.png_button.setToolTip("Save the map, the loss plot and the table as a PNG picture")
        self.csv_button.setToolTip("Save every racer's path as CSV (x, y, loss, gradient, learning "
                                   "rate, … per step)")
        self.png_button.clicked.connect(self._export_png_dialog)
        self.csv_button.clicked.connect(self._export_csv_dialog)
        export.addWidget(self.png_button)
        export.addWidget(self.csv_button)
        layout.addLayout(export)
        layout.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(350)
        scroll.setMaximumWidth(420)
        return scroll

    def _build_race_area(self) -> QWidget:
        area = QWidget()
        layout = QVBoxLayout(area)
        layout.setContentsMargins(0, 0, 0, 0)

        bar = QHBoxLayout()
        self.step_button = QPushButton("Step")
        self.step_button.setToolTip("Advance every racer by one step")
        self.run_button = QPushButton("Run")
        self.run_button.setCheckable(True)
        self.run_button.setToolTip("Run / pause the race")
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Back to the start (fresh optimizer state, same settings)")
        self.step_button.clicked.connect(self._step_clicked)
        self.run_button.toggled.connect(self._run_toggled)
        self.reset_button.clicked.connect(self.reset)
        for b in (self.step_button, self.run_button, self.reset_button):
            bar.addWidget(b)
        bar.addSpacing(12)
        bar.addWidget(QLabel("Speed"))
        self.speed_slider = QSlider(Qt.Horizontal)
        self.speed_slider.setRange(0, 30)
        self.speed_slider.setValue(5)
        self.speed_slider.setFixedWidth(110)
        self.speed_slider.setToolTip("Steps per frame (about 30 frames per second)")
        self.speed_label = QLabel()
        self.speed_label.setMinimumWidth(88)
        self.speed_slider.valueChanged.connect(self._speed_changed)
        bar.addWidget(self.speed_slider)
        bar.addWidget(self.speed_label)
        bar.addWidget(QLabel("Stop at step"))
        self.max_steps_box = QSpinBox()
        self.max_steps_box.setRange(1, 1_000_000)
        self.max_steps_box.setValue(500)
        self.max_steps_box.setToolTip("Run pauses here. Schedules plan for this many steps (the "
                                      "1cycle schedule depends on it); a race already under way "
                                      "keeps its plan until Reset.")
        self.max_steps_box.valueChanged.connect(self._max_steps_changed)
        bar.addWidget(self.max_steps_box)
        bar.addSpacing(12)
        self.step_label = QLabel()
        font = QFont()
        font.setBold(True)
        self.step_label.setFont(font)
        self.step_label.setMinimumWidth(80)
        bar.addWidget(self.step_label)
        bar.addStretch(1)
        self.velocity_check = QCheckBox("Velocity arrows")
        self.velocity_check.setChecked(True)
        self.velocity_check.setToolTip(f"Arrow at the marker: the step momentum alone would take "
                                       f"next, drawn {ARROW_SCALE:g}× longer")
        self.scale_check = QCheckBox("Step-scale ellipses")
        self.scale_check.setChecked(True)
        self.scale_check.setToolTip("Ellipse at the marker of adaptive optimizers: its width and "
                                    "height are proportional to the per-coordinate learning rates")
        for c in (self.velocity_check, self.scale_check):
            c.toggled.connect(self._refresh)
        layout.addLayout(bar)

        self.picture = QSplitter(Qt.Vertical)  # what Export PNG saves
        top = QSplitter(Qt.Horizontal)
        map_box = QWidget()
        map_layout = QVBoxLayout(map_box)
        map_layout.setContentsMargins(0, 0, 0, 0)
        self.map_plot = pg.PlotWidget(background="w")
        self.map_plot.setMinimumSize(400, 400)
        self._setup_map()
        map_layout.addWidget(self.map_plot, 1)
        self.map_caption = QLabel()
        self.map_caption.setWordWrap(True)
        self.map_caption.setStyleSheet("QLabel { color: #444; }")
        caption_row = QHBoxLayout()
        caption_row.addWidget(self.map_caption, 1)
        checks = QVBoxLayout()
        checks.addWidget(self.velocity_check)
        checks.addWidget(self.scale_check)
        caption_row.addLayout(checks)
        map_layout.addLayout(caption_row)
        top.addWidget(map_box)
        self.loss_plot = pg.PlotWidget(background="w")
        self._setup_loss_plot()
        top.addWidget(self.loss_plot)
        top.setSizes([660, 580])
        self.picture.addWidget(top)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for i, tip in enumerate(COLUMN_TIPS):
            self.table.horizontalHeaderItem(i).setToolTip(tip)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.NoSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.Stretch)
        header.setSectionResizeMode(0, QHeaderView.Fixed)
        header.setSectionResizeMode(1, QHeaderView.Interactive)
        self.table.setColumnWidth(0, 12)
        self.table.setColumnWidth(1, 190)
        header.setDefaultAlignment(Qt.AlignCenter | Qt.TextWordWrap)
        header.setMinimumHeight(40)
        self.picture.addWidget(self.table)
        self.picture.setSizes([760, 170])
        self.picture.setStretchFactor(0, 1)
        self.picture.setStretchFactor(1, 0)
        layout.addWidget(self.picture, 1)
        self._speed_changed()
        return area

    def _setup_map(self) -> None:
        item = self.map_plot.getPlotItem()
        item.setAspectLocked(True)
        item.setLabel("bottom", "θ₁  (x)")
        item.setLabel("left", "θ₂  (y)")
        item.showGrid(False, False)
        item.setMenuEnabled(False)
        # explicit axis order: the window may set pyqtgraph's global option
        self.image = pg.ImageItem(axisOrder="col-major")  # image[ix, iy], as Surface.grid returns
        self.image.setZValue(-10)
        item.addItem(self.image)
        # neutral greys (low loss darker) so that the racers' colours stand out
        self.colormap = pg.ColorMap([0.0, 0.5, 1.0], ["#7f8a99", "#c9ced6", "#fbfbfc"])
        self.image.setColorMap(self.colormap)
        self.colorbar = pg.ColorBarItem(colorMap=self.colormap, interactive=False, width=12)
        self.colorbar.setImageItem(self.image, insert_in=item)
        self.contours = pg.PlotDataItem(connect="pairs", pen=pg.mkPen((40, 40, 50, 70), width=1))
        self.contours.setZValue(-5)
        # the colour map and contours change only with the surface or the
        # zoom: let Qt keep them as pixmaps instead of redrawing every frame
        self.image.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.contours.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        item.addItem(self.contours)
        self.minima_item = pg.ScatterPlotItem(symbol="star", size=18, brush=pg.mkBrush("#ffd400"),
                                              pen=pg.mkPen("k", width=1.2))
        self.minima_item.setZValue(5)
        item.addItem(self.minima_item)
        self.start_item = pg.ScatterPlotItem(symbol="o", size=13, brush=pg.mkBrush(255, 255, 255, 200),
                                             pen=pg.mkPen("k", width=1.5))
        self.start_item.setZValue(6)
        item.addItem(self.start_item)
        self.start_text = pg.TextItem("start", color="k", anchor=(0.5, 1.6))
        self.start_text.setZValue(6)
        item.addItem(self.start_text)
        self.map_plot.scene().sigMouseClicked.connect(self._map_clicked)

    def _setup_loss_plot(self) -> None:
        item = self.loss_plot.getPlotItem()
        item.setLogMode(False, True)
        item.setTitle("Loss versus step (log scale; every minimum is 0; drawn down to 1e-20)",
                     color="#222", size="10pt")
        item.setLabel("bottom", "step")
        item.showGrid(False, False)  # pyqtgraph redraws grid lines every frame (~10 ms each)
        item.setMenuEnabled(False)
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
        self.legend = item.addLegend(offset=(-10, 10), labelTextColor="#222", brush=pg.mkBrush(255, 255, 255, 210))

    # ====================================================== public API
    def load_preset(self, name_or_path) -> None:
        """Load a shipped arena preset (by name) or a preset file."""
        try:
            preset = load_arena_preset(name_or_path)
        except DescentError as exc:
            self._show_error(str(exc))
            return
        self.pause()
        self._show_note("")
        self._updating = True
        try:
            name = str(name_or_path)
            if name not in arena_preset_paths():
                name = Path(name).name[:-len(".json")] if name.endswith(".json") else name
            index = self.preset_combo.findData(name)
            self.preset_combo.setCurrentIndex(index if index >= 0 else self.preset_combo.count() - 1)
            self.explanation.setText(preset.explanation)
            self._set_surface_widgets(preset.surface)
            self._surface = make_surface(preset.surface)
            self._start = tuple(preset.start) if preset.start is not None else tuple(self._surface.start)
            self._set_start_widgets()
            self.noise_box.setValue(preset.noise_std)
            self.seed_box.setValue(preset.seed)
            self.max_steps_box.setValue(preset.steps)
            self._specs = [RacerSpec(s.label, s.optimizer, s.schedule, s.clip,
                                     s.color or PALETTE[i % len(PALETTE)])
                           for i, s in enumerate(preset.racers)]
        finally:
            self._updating = False
        self._refresh_racer_list(select=0)
        self._rebuild(new_surface=True)

    def set_surface(self, config, adapt_learning_rates: bool = True) -> None:
        """Switch to a surface (name or config); the start becomes its
        default and, with ``adapt_learning_rates``, every racer's learning
        rate becomes one that suits the new surface (gradients differ in
        scale by orders of magnitude between surfaces)."""
        surface = make_surface(config)
        if adapt_learning_rates:
            self._specs = [RacerSpec(s.label, {**s.optimizer, "learning_rate":
                                               suggested_learning_rate(surface, s.optimizer["name"])},
                                     s.schedule, s.clip, s.color) for s in self._specs]
            self._show_note(f"Learning rates set to values that suit the {surface.title.lower()}.")
        self._updating = True
        try:
            self._set_surface_widgets(surface.get_config())
        finally:
            self._updating = False
        self._surface = surface
        self._start = tuple(surface.start)
        self._set_start_widgets()
        self._mark_custom()
        self._refresh_racer_list(select=max(self.racer_list.currentRow(), 0))
        self._rebuild(new_surface=True)

    def set_start(self, start) -> None:
        """Move the start (resets the race)."""
        self._start = (float(start[0]), float(start[1]))
        self._set_start_widgets()
        self._rebuild()

    def set_racers(self, specs) -> None:
        """Replace the racers (RacerSpecs or anything Arena accepts)."""
        coerced = [RacerSpec.coerce(s, f"racers[{i}]") for i, s in enumerate(specs)]
        self._specs = [RacerSpec(s.label, s.optimizer, s.schedule, s.clip, s.color or PALETTE[i % len(PALETTE)])
                       for i, s in enumerate(coerced)]
        self._refresh_racer_list(select=0)
        self._mark_custom()
        self._rebuild()

    def add_racer(self) -> None:
        if len(self._specs) >= MAX_RACERS:
            return
        used = {s.optimizer["name"] for s in self._specs}
        name = next((n for n in OPTIMIZERS.names() if n not in used), OPTIMIZERS.names()[0])
        used_colors = {s.color for s in self._specs}
        color = next((c for c in PALETTE if c not in used_colors), PALETTE[len(self._specs) % len(PALETTE)])
        spec = RacerSpec(_optimizer_label(name),
                         {"name": name, "learning_rate": suggested_learning_rate(self._surface, name)},
                         color=color)
        self._specs.append(spec.validated())
        self._refresh_racer_list(select=len(self._specs) - 1)
        self._mark_custom()
        self._rebuild()

    def step_race(self, n: int = 1) -> None:
        """Advance every racer n steps and redraw."""
        if self.arena is None:
            return
        self.arena.step(n)
        self._refresh()

    def run(self) -> None:
        self.run_button.setChecked(True)

    def pause(self) -> None:
        self.run_button.setChecked(False)

    def shutdown(self) -> None:
        """Stop the race timer (the main window calls this when closing)."""
        self.pause()
        self._timer.stop()

    @property
    def running(self) -> bool:
        return self._timer.isActive()

    def reset(self) -> None:
        """Back to the start; also applies a changed "Stop at step" to the
        schedules' plan."""
        if self.arena is not None and self.arena.horizon != self.max_steps_box.value():
            self._rebuild()
            return
        if self.arena is not None:
            self.arena.reset()
        self._refresh()

    def export_png(self, path) -> None:
        """Save the map, loss plot and table as a PNG."""
        pixmap = self.picture.grab()
        if not pixmap.save(str(path), "PNG"):
            raise OSError(f"cannot write {path}")

    def export_csv(self, path) -> None:
        """Save every racer's path as CSV rows (see Arena.csv_rows)."""
        if self.arena is not None:
            self.arena.export_csv(path)

    # ===================================================== reactions
    def _preset_picked(self, index: int) -> None:
        name = self.preset_combo.itemData(index)
        if name is not None:
            self.load_preset(name)

    def _mark_custom(self) -> None:
        """The user changed something: the race is no longer the lesson's."""
        if self._updating:
            return
        custom = self.preset_combo.count() - 1
        if self.preset_combo.currentIndex() != custom:
            self.preset_combo.setCurrentIndex(custom)
            if self.explanation.text():
                self.explanation.setText(self.explanation.text() + "\n\n(You have changed the "
                                         "lesson's settings since loading it.)")

    def _set_surface_widgets(self, config: dict) -> None:
        cls = SURFACES.get(config["name"])
        self.surface_combo.blockSignals(True)
        self.surface_combo.setCurrentIndex(self.surface_combo.findData(config["name"]))
        self.surface_combo.blockSignals(False)
        self.surface_combo.setToolTip(cls.description)
        self.surface_form.set_params(cls.hyperparameters, config,
                                     labels={"condition_number": "condition number",
                                             "angle": "angle (degrees)"})

    def _set_start_widgets(self) -> None:
        for box, v in ((self.start_x, self._start[0]), (self.start_y, self._start[1])):
            box.blockSignals(True)
            box.setValue(v)
            box.blockSignals(False)

    def _surface_picked(self) -> None:
        if self._updating:
            return
        self.set_surface(self.surface_combo.currentData())

    def _surface_params_changed(self) -> None:
        if self._updating:
            return
        config = {"name": self.surface_combo.currentData(), **self.surface_form.values()}
        try:
            self._surface = make_surface(config)
        except DescentError as exc:
            self._show_error(str(exc))
            return
        self._mark_custom()
        self._rebuild(new_surface=True)

    def _start_edited(self) -> None:
        self._start = (self.start_x.value(), self.start_y.value())
        self._mark_custom()
        self._rebuild()

    def _max_steps_changed(self) -> None:
        """A longer or shorter race: keep a race under way (so a finished
        race can simply be extended); a fresh one is rebuilt so that its
        schedules plan for the new length."""
        if self._updating:
            return
        if self.arena is None or self.arena.steps == 0:
            self._rebuild()

    def _race_settings_changed(self) -> None:
        if self._updating:
            return
        self._mark_custom()
        self._rebuild()

    def _map_clicked(self, event) -> None:
        if event.button() != Qt.LeftButton or event.double():
            return
        vb = self.map_plot.getPlotItem().vb
        pos = event.scenePos()
        if not vb.sceneBoundingRect().contains(pos):
            return
        p = vb.mapSceneToView(pos)
        event.accept()
        self.set_start((p.x(), p.y()))
        self._mark_custom()

    def _racer_selected(self, row: int) -> None:
        if 0 <= row < len(self._specs):
            self.editor.set_surface(self._surface)
            self.editor.set_spec(self._specs[row], self._specs[row].color)
            self.editor.setEnabled(True)
        else:
            self.editor.setEnabled(False)
        self.remove_button.setEnabled(len(self._specs) > 1)
        self.add_button.setEnabled(len(self._specs) < MAX_RACERS)
        self.copy_button.setEnabled(len(self._specs) < MAX_RACERS)

    def _racer_edited(self) -> None:
        row = self.racer_list.currentRow()
        if not 0 <= row < len(self._specs):
            return
        self._specs[row] = self.editor.spec()
        self._refresh_racer_list(select=row)
        self._mark_custom()
        self._rebuild()

    def _duplicate_racer(self) -> None:
        row = self.racer_list.currentRow()
        if not 0 <= row < len(self._specs) or len(self._specs) >= MAX_RACERS:
            return
        src = self._specs[row]
        used_colors = {s.color for s in self._specs}
        color = next((c for c in PALETTE if c not in used_colors), src.color)
        self._specs.append(RacerSpec(src.label + " (copy)", dict(src.optimizer), dict(src.schedule),
                                     dict(src.clip), color))
        self._refresh_racer_list(select=len(self._specs) - 1)
        self._mark_custom()
        self._rebuild()

    def _remove_racer(self) -> None:
        row = self.racer_list.currentRow()
        if len(self._specs) <= 1 or not 0 <= row < len(self._specs):
            return
        del self._specs[row]
        self._refresh_racer_list(select=min(row, len(self._specs) - 1))
        self._mark_custom()
        self._rebuild()

    def _refresh_racer_list(self, select: int = 0) -> None:
        self.racer_list.blockSignals(True)
        self.racer_list.clear()
        for spec in self._specs:
            pix = QPixmap(14, 14)
            pix.fill(QColor(spec.color))
            text = f"{spec.label}   (η = {spec.optimizer['learning_rate']:g})"
            item = QListWidgetItem(QIcon(pix), text, self.racer_list)
            item.setToolTip(f"{_optimizer_label(spec.optimizer['name'])}, learning rate "
                            f"{spec.optimizer['learning_rate']:g}, schedule {spec.schedule.get('name')}")
        self.racer_list.blockSignals(False)
        self.racer_list.setCurrentRow(select)
        self._racer_selected(select)

    def _step_clicked(self) -> None:
        self.step_race(1)

    def _run_toggled(self, on: bool) -> None:
        if on:
            if self.arena is not None and self.arena.steps >= self.max_steps_box.value():
                self.reset()  # a finished race starts over
            self.run_button.setText("Pause")
            self._timer.start()
        else:
            self.run_button.setText("Run")
            self._timer.stop()
            self._refresh()  # the table is throttled while running: bring it up to date

    def _speed_changed(self) -> None:
        n = _speed_steps(self.speed_slider.value())
        self.speed_label.setText(f"{n} step{'s' if n > 1 else ''}/frame")

    def _tick(self) -> None:
        if self.arena is None:
            self.pause()
            return
        remaining = self.max_steps_box.value() - self.arena.steps
        if remaining <= 0 or all(r.stopped for r in self.arena.racers):
            self.pause()
            return
        self.step_race(min(_speed_steps(self.speed_slider.value()), remaining))
        if self.arena.steps >= self.max_steps_box.value():
            self.pause()

    def _show_note(self, text: str) -> None:
        self.note_label.setText(text)
        self.note_label.setVisible(bool(text))

    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))

    # ================================================== arena and drawing
    def _rebuild(self, new_surface: bool = False) -> None:
        """A fresh Arena from the current settings (the race restarts)."""
        if self._updating:
            return
        try:
            arena = Arena(self._surface, self._specs, start=self._start,
                          noise_std=self.noise_box.value(), seed=self.seed_box.value(),
                          horizon=self.max_steps_box.value())
        except DescentError as exc:
            self._show_error(str(exc))
            return
        self._show_error("")
        self.arena = arena
        self.editor.set_surface(self._surface)
        if new_surface:
            self._draw_surface()
        self._make_racer_items()
        self._refresh()

    def _draw_surface(self) -> None:
        """Colour map and contour lines.  The surface is sampled beyond its
        view box (MAP_PADDING) so the map stays filled when the plot is not
        square or the user zooms out; the colour range comes from the view box."""
        s = self._surface
        x0, x1, y0, y1 = s.view
        px, py = MAP_PADDING * (x1 - x0), MAP_PADDING * (y1 - y0)
        box = (x0 - px, x1 + px, y0 - py, y1 + py)
        xs, ys, values = s.grid(box, resolution=GRID)
        inside = values[np.ix_((xs >= x0) & (xs <= x1), (ys >= y0) & (ys <= y1))]
        finite = inside[np.isfinite(inside)]
        top = float(finite.max()) if finite.size else 1.0
        if s.log_colors:
            floor = max(float(np.percentile(finite, 0.5)), top * 1e-9, 1e-12)
            shown = np.log10(np.clip(values, floor, None))
            lo, hi = math.log10(floor), math.log10(top)
            label = "log₁₀ loss"
        else:
            shown = values
            lo, hi = float(finite.min()), top
            label = "loss"
        shown = np.where(np.isfinite(shown), shown, hi)
        levels = np.linspace(lo, hi, CONTOUR_LEVELS + 2)[1:-1]
        self.colorbar.axis.setLabel(label)
        self.image.setImage(np.minimum(shown, hi), levels=(lo, hi), autoLevels=False)
        self.image.setRect(QRectF(box[0], box[2], box[1] - box[0], box[3] - box[2]))
        self.colorbar.setLevels((lo, hi))
        segments = [contour_segments(shown, xs, ys, level) for level in levels]
        points = np.concatenate(segments) if segments else np.empty((0, 2))
        self.contours.setData(points[:, 0], points[:, 1], connect="pairs")
        self.minima_item.setData(pos=s.minima)
        item = self.map_plot.getPlotItem()
        item.setTitle(self._surface_title(), color="#222", size="11pt")
        # limits first: the previous surface's limits would clip the new range
        item.vb.setLimits(xMin=x0 - 2 * (x1 - x0), xMax=x1 + 2 * (x1 - x0),
                          yMin=y0 - 2 * (y1 - y0), yMax=y1 + 2 * (y1 - y0))
        item.vb.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
        self._view_width = x1 - x0

    def _surface_title(self) -> str:
        s = self._surface
        params = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in s.params.items())
        return f"{s.title}" + (f"  ({params})" if params else "")

    def _make_racer_items(self) -> None:
        plot = self.map_plot.getPlotItem()
        for items in self._racer_items:
            for key in ("path", "marker", "arrow", "ellipse"):
                plot.removeItem(items[key])
            self.loss_plot.getPlotItem().removeItem(items["loss"])
        self.legend.clear()
        self._racer_items = []
        for index, racer in enumerate(self.arena.racers):
            color = QColor(self._specs[index].color or PALETTE[index % len(PALETTE)])
            path = pg.PlotDataItem(pen=pg.mkPen(color, width=2.2), antialias=True)
            path.setZValue(10 + index)
            marker = pg.ScatterPlotItem(size=13, brush=pg.mkBrush(color), pen=pg.mkPen("k", width=1.5))
            marker.setZValue(30 + index)
            arrow = pg.PlotDataItem(pen=pg.mkPen(color.darker(150), width=2.5), connect="pairs",
                                    antialias=True)
            arrow.setZValue(29)
            ellipse = pg.PlotDataItem(pen=pg.mkPen(color.darker(130), width=2), antialias=True)
            ellipse.setZValue(28)
            for it in (path, marker, arrow, ellipse):
                plot.addItem(it)
            loss = self.loss_plot.getPlotItem().plot(pen=pg.mkPen(color, width=2), name=racer.label)
            self._racer_items.append({"path": path, "marker": marker, "arrow": arrow,
                                      "ellipse": ellipse, "loss": loss})
        self.table.setRowCount(len(self.arena.racers))
        for row, racer in enumerate(self.arena.racers):
            swatch = QTableWidgetItem()
            swatch.setBackground(QColor(self._specs[row].color))
            self.table.setItem(row, 0, swatch)
            for col in range(1, len(COLUMNS)):
                cell = QTableWidgetItem()
                cell.setTextAlignment(Qt.AlignVCenter | (Qt.AlignLeft if col == 1 else Qt.AlignRight))
                self.table.setItem(row, col, cell)
            self.table.item(row, 1).setText(racer.label)
            self.table.item(row, 1).setToolTip(f"{_optimizer_label(racer.optimizer.name)}, "
                                               f"learning rate {racer.optimizer.learning_rate:g}")
        # show every row without scrolling; the plots get the rest
        wanted = self.table.horizontalHeader().height() + 22 * len(self.arena.racers) + 8
        total = sum(self.picture.sizes())
        if total > 0:
            self.picture.setSizes([max(total - wanted, 300), wanted])
        self.map_caption.setText(
            "Click the map to move the start (white circle). Stars: minima. Arrows: the step "
            f"momentum alone would take next (×{ARROW_SCALE:g}). Ellipses: per-coordinate step "
            "size of adaptive optimizers (wide = bigger steps along x).")

    def _refresh(self) -> None:
        """Redraw paths, markers, arrows, ellipses, loss curves and the table."""
        if self.arena is None:
            return
        self.start_item.setData(pos=[self.arena.start])
        self.start_text.setPos(*self.arena.start)
        radius = ELLIPSE_FRACTION * getattr(self, "_view_width", 1.0)
        circle = np.linspace(0, 2 * np.pi, 49)
        rows = []
        # a diverging racer's loss would stretch the log axis over dozens of
        # decades and flatten every other curve: draw it up to a ceiling
        ceiling = LOSS_CEILING * max(max(float(r.losses[0]) for r in self.arena.racers), 1e-12)
        for row, (racer, items) in enumerate(zip(self.arena.racers, self._racer_items)):
            path = racer.path
            items["path"].setData(path[:, 0], path[:, 1])
            pos = path[-1]
            items["marker"].setData(pos=[pos])
            velocity = racer.velocity() if not racer.stopped else np.zeros(2)
            speed = float(np.linalg.norm(velocity))
            if self.velocity_check.isChecked() and speed > 0 and math.isfinite(speed):
                items["arrow"].setData(*_arrow(pos, velocity * ARROW_SCALE, radius * 0.5), connect="pairs")
            else:
                items["arrow"].setData([], [])
            gains = racer.gains()
            if (self.scale_check.isChecked() and racer.adaptive and gains is not None
                    and np.all(np.isfinite(gains)) and gains.max() > 0):
                axes = radius * np.abs(gains) / np.abs(gains).max()
                items["ellipse"].setData(pos[0] + axes[0] * np.cos(circle), pos[1] + axes[1] * np.sin(circle))
            else:
                items["ellipse"].setData([], [])
            losses = np.clip(racer.losses, LOSS_FLOOR, ceiling)
            items["loss"].setData(np.arange(losses.size), losses)
            rows.append((racer, gains, speed))
        self.step_label.setText(f"step {self.arena.steps}")
        # the table is the slowest thing to repaint: while running, a few
        # updates per second are plenty to read it
        now = time.monotonic()
        if not self.running or now - self._table_time >= TABLE_INTERVAL:
            self._table_time = now
            for row, (racer, gains, speed) in enumerate(rows):
                self._fill_row(row, racer, gains, speed)

    def _fill_row(self, row: int, racer, gains, speed: float) -> None:
        status = racer.stopped
        values = [racer.steps, racer.loss, racer.distance, racer.effective_step,
                  None if gains is None else float(gains[0]), None if gains is None else float(gains[1]),
                  speed, racer.steps_to_loss(FINISH_LOSS)]
        for col, value in enumerate(values, start=2):
            text = _fmt(value)
            if status and col == 3:
                text = status
            self.table.item(row, col).setText(text)

    # ============================================================ export
    def _export_png_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export picture", "arena.png", "PNG image (*.png)")
        if path:
            try:
                self.export_png(path)
            except OSError as exc:
                QMessageBox.warning(self, "Export picture", str(exc))

    def _export_csv_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export paths", "arena-paths.csv", "CSV (*.csv)")
        if path:
            try:
                self.export_csv(path)
            except (OSError, DescentError) as exc:
                QMessageBox.warning(self, "Export paths", str(exc))


def _arrow(origin: np.ndarray, vector: np.ndarray, head: float):
    """Segments (x, y arrays for connect="pairs") of an arrow from origin
    along vector, with a head of size ``head`` (at most half the length)."""
    tip = origin + vector
    length = float(np.linalg.norm(vector))
    h = min(head, 0.5 * length)
    u = vector / length
    normal = np.array([-u[1], u[0]])
    left = tip - h * u + 0.5 * h * normal
    right = tip - h * u - 0.5 * h * normal
    pts = np.array([origin, tip, tip, left, tip, right])
    return pts[:, 0], pts[:, 1]
