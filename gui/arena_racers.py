"""The arena's racer editor: one racer's label, colour, optimizer,
hyperparameters, schedule and clipping, plus the racers' default colours.
Used by :class:`gui.arena.ArenaTab`.  Optimizers' display names are their
registry entries' ``title``.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLineEdit, QVBoxLayout

from engine.arena.race import RacerSpec, suggested_learning_rate
from engine.spec.sections import OPTIMIZER_CLIP_PARAMS
from engine.catalog.optimizers import OPTIMIZERS
from engine.catalog.schedules import SCHEDULES
from engine.arena.surfaces import make_surface

from .arena_widgets import ColorButton, compact_combo
from .widgets.params import ParamForm, optimizer_params

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22"]


def optimizer_label(name: str) -> str:
    """The optimizer's display title, from its registry entry."""
    return OPTIMIZERS.get(name).title


class RacerEditor(QGroupBox):
    """Edits one racer: label, colour, optimizer and its hyperparameters,
    schedule and clipping.  ``changed`` fires after every edit.

    The forms are the Train tab's (:class:`gui.widgets.params.ParamForm`
    with the same specs and keys), so an optimizer's settings have the same
    ranges, arrows, tooltips and refusals in both tabs."""

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__("Selected racer", parent)
        self._surface = make_surface("bowl")
        layout = QVBoxLayout(self)
        top = QFormLayout()
        top.setLabelAlignment(Qt.AlignRight)   # like the parameter forms below
        self.label_edit = QLineEdit()
        self.label_edit.setToolTip("Name shown in the table and the legend")
        self.color_button = ColorButton()
        row = QHBoxLayout()
        row.addWidget(self.label_edit, 1)
        row.addWidget(self.color_button)
        top.addRow("Label", row)
        self.optimizer_combo = QComboBox()
        for name, cls in OPTIMIZERS.items():
            self.optimizer_combo.addItem(optimizer_label(name), name)
            self.optimizer_combo.setItemData(self.optimizer_combo.count() - 1,
                                             (cls.__doc__ or name).strip(), Qt.ToolTipRole)
        compact_combo(self.optimizer_combo)
        top.addRow("Optimizer", self.optimizer_combo)
        layout.addLayout(top)
        self.hyper_form = ParamForm(prefix="optimizer.")   # learning rate first, then the optimizer's own
        layout.addWidget(self.hyper_form)
        sched = QFormLayout()
        sched.setLabelAlignment(Qt.AlignRight)
        self.schedule_combo = QComboBox()
        for name, cls in SCHEDULES.items():
            self.schedule_combo.addItem(name, name)
            self.schedule_combo.setItemData(self.schedule_combo.count() - 1,
                                            (cls.__doc__ or name).strip(), Qt.ToolTipRole)
        self.schedule_combo.setToolTip("Learning-rate schedule (one step of the arena is one "
                                       "optimizer update; one epoch is one step)")
        compact_combo(self.schedule_combo)
        sched.addRow("Schedule", self.schedule_combo)
        layout.addLayout(sched)
        self.schedule_form = ParamForm(prefix="schedule.")
        layout.addWidget(self.schedule_form)
        self.clip_form = ParamForm(OPTIMIZER_CLIP_PARAMS, prefix="optimizer.")
        clip_box = QGroupBox("Gradient clipping (tick to enable)")
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
        self.hyper_form.set_spec(optimizer_params(OPTIMIZERS.get(name)),
                                 {"learning_rate": suggested_learning_rate(self._surface, name)})
        old = self.label_edit.text()
        if not old or old in {optimizer_label(n) for n in OPTIMIZERS} or old.startswith("Momentum"):
            self.label_edit.setText(optimizer_label(name))
        self.changed.emit()

    def _schedule_picked(self) -> None:
        cls = SCHEDULES.get(self.schedule_combo.currentData())
        self.schedule_form.set_spec(cls.hyperparameters)
        self.changed.emit()

    def set_spec(self, spec: RacerSpec, color: str) -> None:
        widgets = (self.label_edit, self.color_button, self.optimizer_combo, self.schedule_combo)
        for w in widgets:
            w.blockSignals(True)
        try:
            self.label_edit.setText(spec.label)
            self.color_button.set_color(color)
            name = spec.optimizer["name"]
            self.optimizer_combo.setCurrentIndex(self.optimizer_combo.findData(name))
            self.hyper_form.set_spec(optimizer_params(OPTIMIZERS.get(name)), spec.optimizer)
            sched_name = spec.schedule.get("name", "constant")
            self.schedule_combo.setCurrentIndex(self.schedule_combo.findData(sched_name))
            self.schedule_form.set_spec(SCHEDULES.get(sched_name).hyperparameters, spec.schedule)
            self.clip_form.set_values({k: spec.clip.get(k) for k in OPTIMIZER_CLIP_PARAMS})
        finally:
            for w in widgets:
                w.blockSignals(False)

    def spec(self) -> RacerSpec:
        optimizer = {"name": self.optimizer_combo.currentData(), **self.hyper_form.values()}
        schedule = {"name": self.schedule_combo.currentData(), **self.schedule_form.values()}
        clip = {k: v for k, v in self.clip_form.values().items() if v is not None}
        return RacerSpec(self.label_edit.text().strip() or optimizer_label(optimizer["name"]),
                         optimizer, schedule, clip, self.color_button.color())
