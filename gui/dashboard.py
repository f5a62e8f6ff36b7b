"""The grid of live plots, plus the task view (decision boundary or confusion
matrix), a run-notes panel that explains what the shown run is doing and,
below it, the coach's findings about that run.

``Dashboard.refresh(records, focus)`` is called by the window's redraw timer;
``records`` are the runs to overlay (checked in the run list), ``focus`` the
one whose decision boundary, confusion matrix, heat map, notes and coach
findings are shown.
"""
from __future__ import annotations

import html
import math
import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QFrame, QGridLayout, QLabel, QScrollArea, QSizePolicy, QSplitter,
                               QStackedWidget, QWidget)

from .augment_panel import augment_note
from .coach_panel import CoachPanel
from .panels import CLASS_COLORS
from .layer_plots import ActivationPanel, DeadPanel, GradNormPanel, RatioPanel
from .metric_plots import AccuracyPanel, LossPanel
from .plots import PlotPanel
from .predictions import BoundaryView, ConfusionView
from .records import distinguishing_labels

STATUS_COLORS = {"running": "#1f4e99", "paused": "#b86e00", "starting": "#1f4e99", "finished": "#1b7a2a", "early_stopped": "#1b7a2a",
                 "stopped": "#555555", "diverged": "#d00000", "interrupted": "#b86e00", "failed": "#d00000"}
DIVERGED_HINT = ("The loss, a gradient norm or a weight became NaN or infinite: the steps were too large. Try a "
                 "lower learning rate (÷10), gradient clipping (clipnorm 1.0) or batch normalization, then train "
                 "again. (A loss that is huge but finite is not divergence: such a run goes on.)")


class OutputPanel(PlotPanel):
    """7: decision boundary (2-D data) or confusion matrix + misclassified images (images)."""

    def __init__(self, parent=None):
        self.stack = QStackedWidget()
        super().__init__("7 · What the model predicts", "2-D data: the colour of the plane is the class the "
                         "network predicts (pale = unsure), refreshed a few times a second; the dots are the "
                         "training points. Image data: the validation confusion matrix (rows = true class) and "
                         "some misclassified images.", plot_widget=self.stack)
        self.boundary = BoundaryView()
        self.confusion = ConfusionView()
        self.uncertainty_box = QCheckBox("MC-dropout uncertainty")
        self.uncertainty_box.setToolTip("Standard deviation of the predicted class probability over K passes with "
                                        "dropout kept on (training.mc_dropout_samples): dark = the passes disagree")
        self.uncertainty_box.toggled.connect(self._uncertainty_toggled)
        self.uncertainty_box.hide()
        self.header.addWidget(self.uncertainty_box)
        self.message = QLabel("Train a network to see its predictions here.")
        self.message.setAlignment(Qt.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #666;")
        for w in (self.message, self.boundary, self.confusion):
            self.stack.addWidget(w)
        self.run_id = None

    max_rate = 10   # the engine sends a surface per epoch: dozens a second for a tiny net

    def sync(self, records, multi, focus, force: bool = True) -> None:
        now = time.monotonic()
        if (not force and focus is not None and focus.run_id == self.run_id
                and now - getattr(self, "_drawn_at", 0.0) < 1.0 / self.max_rate):
            self.pending = True
            return
        self.pending = False
        self._drawn_at = now
        self._last_focus = focus
        key = None if focus is None else (focus.run_id, id(focus.surface), id(focus.confusion), id(focus.points),
                                          focus.status, focus.name, self.uncertainty_box.isChecked())
        if not force and key == getattr(self, "_shown_key", ()):
            return    # nothing new to predict: the confusion matrix changes once an epoch
        self._shown_key = key
        if focus is None:
            self.stack.setCurrentWidget(self.message)
            self.title.setText("<b>7 · What the model predicts</b>")
            self.set_note("")
            return
        if focus.run_id != self.run_id:
            self.run_id = focus.run_id
            self.boundary.clear_run()
            self.confusion.clear_run()
        if focus.surface is not None or focus.points is not None:
            self.stack.setCurrentWidget(self.boundary)
            has_map = focus.surface is not None and focus.surface.uncertainty is not None
            if self.uncertainty_box.isVisibleTo(self) != has_map:
                self.uncertainty_box.setVisible(has_map)
            self.boundary.show_uncertainty = has_map and self.uncertainty_box.isChecked()
            self.boundary.show_run(focus)
            step = focus.surface.step if focus.surface is not None else 0
            self.title.setText(f"<b>7 · Decision boundary</b> at step {step:,}")
            self.title.setToolTip(f"{focus.name}: {self.help.toolTip()}")
            names = focus.class_names or tuple(f"class {i}" for i in range(focus.n_classes))
            self.set_note("  ".join(f"<span style='color:{CLASS_COLORS[i % len(CLASS_COLORS)]}'>●</span> "
                                    f"{html.escape(n)}" for i, n in enumerate(names)))
        elif focus.confusion is not None:
            self.stack.setCurrentWidget(self.confusion)
            self.confusion.show_run(focus)
            self.title.setText("<b>7 · Confusion matrix</b>")
            self.title.setToolTip(f"{focus.name}: {self.help.toolTip()}")
            self.set_note("")
        else:
            self.stack.setCurrentWidget(self.message)
            if focus.image_shape is not None and not focus.finished:
                text = "The validation confusion matrix and misclassified images appear after the first epoch."
            elif focus.status == "starting":
                text = "Loading the data…"
            elif focus.task == "classification" and not focus.finished:
                text = "The decision boundary is drawn for data with two input features."
            else:
                text = "No class predictions to draw for this run: see the loss curves."
            self.message.setText(text)
            self.title.setText("<b>7 · What the model predicts</b>")


    def _uncertainty_toggled(self, _on: bool) -> None:
        self._drawn_at = 0.0
        self._last_focus = getattr(self, "_last_focus", None)
        if self._last_focus is not None:
            self.sync([], False, self._last_focus)


class NotesPanel(QLabel):
    """What the focus run is, how it is doing, and what to look at."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.setTextFormat(Qt.RichText)
        self.setStyleSheet("QLabel { background: #fbfbf6; border: 1px solid #ddd; padding: 6px; }")
        self.setMinimumWidth(200)
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Preferred)
        self._key = ()
        self._last = 0.0
        self.pending = False
        self.show_run(None)

    def show_run(self, record) -> None:
        if record is None:
            key = None
        else:
            key = (record.run_id, record.version, record.shown_status)
        if key == self._key:
            return
        now = time.monotonic()
        if record is not None and not record.finished and now - self._last < 0.25 and self._key \
                and self._key[0] == record.run_id and self._key[2] == record.shown_status:
            self.pending = True
            return  # live numbers: 4 updates a second are plenty
        self.pending = False
        self._key, self._last = key, now
        if record is None:
            self.setText("<b>Run notes</b><br>Press <b>Train</b> (Space) to start. The plots fill in as the network "
                         "learns; hover the blue ? of a plot to learn what it shows.")
            return
        color = STATUS_COLORS.get("paused" if record.shown_status == "paused" else record.status, "#222")
        exp = record.experiment
        lines = [f"<b>{html.escape(record.name)}</b> — <span style='color:{color}'><b>{record.shown_status}</b></span>"]
        title = exp.get("title") if isinstance(exp, dict) else ""
        if title and title not in record.name:
            lines.append(f"<span style='color:#555'>{html.escape(title)}</span>")
        if getattr(record, "changes", ""):
            lines.append(f"<i>Changed:</i> {html.escape(record.changes)}")
        if record.reason and record.finished:
            lines.append(html.escape(record.reason))
        if record.status == "diverged":
            lines.append(f"<span style='color:{STATUS_COLORS['diverged']}'>⚠ {DIVERGED_HINT}</span>")
        total = f"/{record.total_steps:,}" if record.total_steps else ""
        rate = "" if math.isnan(record.rate) else f" · {record.rate:,.0f} steps/s"
        lines.append(f"step {record.step:,}{total} · epoch {record.epoch:.1f}{rate}")
        if record.n_params:
            lines.append(f"{record.n_params:,} trainable parameters")
        lines += augment_note(exp)
        label, value = record.best_val()
        if not math.isnan(value):
            lines.append(f"best {label}: <b>{record.best_val_text()}</b>")
        look = exp.get("look_at") if isinstance(exp, dict) else ""
        if look:
            lines.append(f"<i>Look at:</i> {html.escape(look)}")
        self.setText("<br>".join(lines))


class FlatGrid(QGridLayout):
    """A grid that never asks for height-for-width: the plots' wrapping key lines would otherwise
    make the scroll area size the grid from every panel's preferred height (rows of 500 px on a
    768-pixel screen) instead of the viewport's."""

    def hasHeightForWidth(self) -> bool:
        return False


class Dashboard(QWidget):
    """All plots in a grid."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.loss = LossPanel()
        self.accuracy = AccuracyPanel()
        self.grad = GradNormPanel()
        self.dead = DeadPanel()
        self.activation = ActivationPanel()
        self.ratio = RatioPanel()
        self.output = OutputPanel()
        self.notes = NotesPanel()
        self.coach = CoachPanel()
        self.notes_split = QSplitter(Qt.Vertical)   # the notes above, the coach below: one grid cell
        self.notes_area = QScrollArea()   # the notes grow with the run: scroll rather than cut them
        self.notes_area.setWidget(self.notes)
        self.notes_area.setWidgetResizable(True)
        self.notes_area.setFrameShape(QFrame.NoFrame)
        self.notes_split.addWidget(self.notes_area)
        self.notes_split.addWidget(self.coach)
        self.notes_split.setChildrenCollapsible(False)
        self.notes_split.setStretchFactor(0, 2)
        self.notes_split.setStretchFactor(1, 3)
        self.notes_split.setMinimumSize(250, 190)
        grid = FlatGrid(self)
        grid.setContentsMargins(2, 2, 2, 2)
        grid.setSpacing(3)
        grid.addWidget(self.loss, 0, 0)
        grid.addWidget(self.accuracy, 0, 1)
        grid.addWidget(self.output, 0, 2, 2, 1)
        grid.addWidget(self.grad, 1, 0)
        grid.addWidget(self.ratio, 1, 1)
        grid.addWidget(self.dead, 2, 0)
        grid.addWidget(self.activation, 2, 1)
        grid.addWidget(self.notes_split, 2, 2)
        for c in range(3):
            grid.setColumnStretch(c, 1)
        for r in range(3):
            grid.setRowStretch(r, 1)
        self.panels = [self.loss, self.accuracy, self.grad, self.dead, self.activation, self.ratio, self.output]
        self.refreshes = 0
        self._key = None

    def refresh(self, records: list, focus, force: bool = True) -> None:
        """Sync every panel with ``records``; a timer tick (force=False) that finds no record
        changed and no panel behind costs nothing (ticks outnumber new data for large networks,
        and every Python cycle spent here is taken from the training thread: one GIL)."""
        key = (tuple((r.run_id, r.version) for r in records), None if focus is None else (focus.run_id, focus.version))
        unchanged = not force and key == self._key
        self._key = key
        multi = len(records) > 1
        if multi and tuple(r.run_id for r in records) != getattr(self, "_labelled", None):
            self._labelled = tuple(r.run_id for r in records)
            for run_id, label in distinguishing_labels(records).items():
                next(r for r in records if r.run_id == run_id).label = label
        for panel in self.panels:
            if not unchanged or panel.pending:   # rate-limited panels catch up on later ticks
                panel.sync(records, multi, focus, force)
        if not unchanged or self.notes.pending:
            self.notes.show_run(focus)
        if not unchanged:
            self.coach.show_run(focus)
        self.refreshes += 1

    def curve_items(self) -> dict:
        """(panel name, key) -> plot item: what tests inspect."""
        out = {}
        for name in ("loss", "accuracy", "grad", "dead", "activation", "ratio"):
            for key, item in getattr(self, name).items.items():
                out[(name, key)] = item
        return out
