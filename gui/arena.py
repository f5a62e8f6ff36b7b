"""The optimizer arena tab: optimizers race across a 2-D loss surface.

The window's main view trains networks; this tab makes the book's pictures
of momentum, Nesterov, AdaGrad, RMSProp and Adam (Figures 11-6 and 11-7)
live.  All optimizer arithmetic happens in :mod:`engine.arena.race`, which drives
the network engine's own optimizers; this module only edits settings, asks
the arena to step, and draws what it reports.  A race step costs
microseconds, so a QTimer on the GUI thread is all the machinery needed.

Layout: settings on the left (lesson preset, surface, start, noise, racers);
the contour map in the middle (click to move the start); on the right the
loss of every racer against the step (log scale) and a live table.

The tab is split over three modules: this one builds the settings and the
race controls and reacts to them; :mod:`gui.arena_racers` holds the editor
of one racer; :mod:`gui.arena_drawing` draws the map, the racers, the loss
plot and the table (a mixin of :class:`ArenaTab`).
"""
from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QIcon, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QFrame, QGroupBox, QHBoxLayout,
                               QLabel, QListWidget, QListWidgetItem, QMessageBox, QPushButton, QScrollArea,
                               QSlider, QSpinBox, QSplitter, QVBoxLayout, QWidget)

from engine.arena.race import (MAX_RACERS, PRESET_PARAMS, Arena, RacerSpec, arena_preset_paths,
                               load_arena_preset, suggested_learning_rate)
from engine.errors import DescentError
from engine.catalog.optimizers import OPTIMIZERS
from engine.params import Param
from engine.arena.surfaces import SURFACES, make_surface

from .arena_drawing import ARROW_SCALE, ArenaDrawing
from .arena_racers import PALETTE, RacerEditor, optimizer_label
from .arena_widgets import compact_combo
from .widgets.params import NumberEditor, ParamForm

# Importing the gui package has already applied gui.compat's guard against
# the PySide6 6.12.0 / Python 3.11 reference-count bug this tab would
# otherwise trigger within seconds of animation.

FRAME_MS = 33            # timer interval while running (about 30 frames per second)


def _speed_steps(slider_value: int) -> int:
    """Slider 0..30 -> 1..1000 steps per frame, logarithmically."""
    return max(1, int(round(10 ** (slider_value / 10))))


class ArenaTab(ArenaDrawing, QWidget):
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
        compact_combo(self.preset_combo)
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
        compact_combo(self.surface_combo)
        s_layout.addWidget(self.surface_combo)
        self.surface_form = ParamForm(prefix="surface.")
        self.surface_form.changed.connect(self._surface_params_changed)
        s_layout.addWidget(self.surface_form)
        start_form = QFormLayout()
        start_row = QHBoxLayout()
        coordinate = Param(0.0, "Starting coordinate; you can also click on the map.", low=-1e6, high=1e6)
        self.start_x = NumberEditor(coordinate, "start[0]")
        self.start_y = NumberEditor(coordinate, "start[1]")
        for box in (self.start_x, self.start_y):
            box.changed.connect(self._start_edited)
            start_row.addWidget(box)
        start_form.addRow("Start x, y", start_row)
        self.noise_box = NumberEditor(PRESET_PARAMS["noise_std"], "noise_std")
        self.noise_box.changed.connect(self._race_settings_changed)
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
        self.map_plot.scene().sigMouseClicked.connect(self._map_clicked)
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
        self._setup_table()
        self.picture.addWidget(self.table)
        self.picture.setSizes([760, 170])
        self.picture.setStretchFactor(0, 1)
        self.picture.setStretchFactor(1, 0)
        layout.addWidget(self.picture, 1)
        self._speed_changed()
        return area

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
            self.noise_box.set_value(preset.noise_std)
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
        spec = RacerSpec(optimizer_label(name),
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
        self.surface_form.set_spec(cls.hyperparameters, config)

    def _set_start_widgets(self) -> None:
        for box, v in ((self.start_x, self._start[0]), (self.start_y, self._start[1])):
            box.set_value(v)

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
            item.setToolTip(f"{optimizer_label(spec.optimizer['name'])}, learning rate "
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

    # ========================================================== the race
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

