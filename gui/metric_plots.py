"""Panels 1-2 of the dashboard: loss and accuracy (the curves that have no layers).

Built on :mod:`gui.plots` (``PlotPanel``, ``Follow``, ``Key``); several runs: colour = run.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QCheckBox

from .plots import (TRAIN_COLOR, VAL_COLOR, EpochAxis, Follow, LogAxis, PlotPanel, mark_bad, positive,
                    set_if_grown, setup_plot)


# ====================================================================== loss

LOSS_HELP = ("Training loss of every step (light), its mean per epoch (dots) and the validation loss "
             "after each epoch (dashed). Lower is better; a validation loss rising while the training loss "
             "falls means overfitting.<br><br><b>Why the training loss can sit above the validation loss:</b> "
             "the two are not measured alike. During training, batch normalization normalizes each layer with "
             "the statistics of the current batch (noisy for small batches: with batch 16 the loss can sit "
             "several times above the validation loss) while validation uses the moving averages; dropout "
             "switches units off at random during training and uses the whole network for validation. Both "
             "make the training loss higher than the same network scores at inference. And each epoch's "
             "training mean is taken while the weights still change, the validation loss after the epoch.")


class LossPanel(PlotPanel):
    label_phases = True

    def __init__(self, parent=None):
        self.epoch_axis = EpochAxis()
        widget = pg.PlotWidget(axisItems={"top": self.epoch_axis, "left": LogAxis("left")})
        super().__init__("1 · Loss", LOSS_HELP, plot_widget=widget)
        self.plot = widget.getPlotItem()
        self.plot.showAxis("top")
        setup_plot(self.plot, "step", "loss", log_y=True)
        self.plot.getAxis("top").setLabel("epoch")
        self.follows = [Follow(self.plot)]
        self.log_box = QCheckBox("log scale")
        self.log_box.setChecked(True)
        self.log_box.setToolTip("Logarithmic loss axis: shows progress late in training")
        self.log_box.toggled.connect(self._log_toggled)
        self.header.addWidget(self.log_box)

    def _log_toggled(self, on: bool) -> None:
        self.plot.setLogMode(y=on)
        self.follows[0].update(force=True)
        self.mark_offscale(self.follows[0], force=True)

    def version_of(self, record):
        return record.step_version, record.epoch_version

    def draw(self, r, multi, color):
        ep = r.epochs
        if not multi or not len(ep["step"]):   # comparing runs: epoch means only, the noise would hide them
            light = QColor(color or TRAIN_COLOR).lighter(165)
            light.setAlpha(110)
            item = self.curve(self.plot, (r.run_id, "step"), None, light)
            mark_bad(item, r.loss_step.data, r.loss.data)
            item.setData(r.loss_step.data, positive(r.loss.data))
        elif (r.run_id, "step") in self.items:
            self.items[(r.run_id, "step")].setVisible(False)
        set_if_grown(self.curve(self.plot, (r.run_id, "train"), None, color or "#0b4f8a", 2, symbol="o"),
                     ep["step"].data, positive(ep["train_loss"].data), raw=ep["train_loss"].data)
        val = ep["val_loss"].data
        if np.isfinite(val).any() or r.diverged_step is not None:
            set_if_grown(self.curve(self.plot, (r.run_id, "val"), None, color or VAL_COLOR, 2, Qt.DashLine,
                                    symbol="s"), ep["step"].data, positive(val),
                         raw=val if np.isfinite(val).any() else None)
        self.diverged_marker(self.plot, r, label=True)

    def key_entries(self, records, multi, focus):
        if multi:
            return [(self.items.get((r.run_id, "train")), r.label, r.color, Qt.SolidLine, 255) for r in records
                    if (r.run_id, "train") in self.items]
        out = []
        for r in records:
            for kind, text, color, style in (("step", "train (each step)", QColor(TRAIN_COLOR).lighter(165),
                                              Qt.SolidLine),
                                             ("train", "train (epoch mean)", "#0b4f8a", Qt.SolidLine),
                                             ("val", "validation", VAL_COLOR, Qt.DashLine)):
                if (r.run_id, kind) in self.items:
                    out.append((self.items[(r.run_id, kind)], text, color, style, 255))
        return out

    def after_sync(self, records, multi, focus, changed):
        if focus is not None:
            self.epoch_axis.steps_per_epoch = max(1, focus.steps_per_epoch)
        self.set_note("solid: training loss (epoch mean) · dashed: validation" if multi else
                      train_above_validation(focus))


def train_above_validation(record) -> str:
    """A note when the training loss sits well above the validation loss in a network with batch
    normalization or dropout: the surprise the loss plot's help explains."""
    if record is None or not len(record.epochs["step"]):
        return ""
    layers = record.experiment.get("model", {}).get("layers", [])
    causes = [name for name, used in (("batch norm", any(l.get("batch_norm") not in (None, "none", False)
                                                         for l in layers)),
                                      ("dropout", any(l.get("dropout") for l in layers))) if used]
    train, val = float(record.epochs["train_loss"].data[-1]), float(record.epochs["val_loss"].data[-1])
    if not causes or not (math.isfinite(train) and math.isfinite(val) and val > 0 and train > 1.5 * val):
        return ""
    return (f"training loss {train / val:.1f}× the validation loss: {' and '.join(causes)} act differently "
            "while training (see ?)")


# ================================================================== accuracy

class AccuracyPanel(PlotPanel):
    label_phases = True
    max_rate = 10   # epoch results: a tiny net at full speed finishes dozens of epochs a second

    def __init__(self, parent=None):
        super().__init__("2 · Accuracy", "Percentage of examples classified correctly, measured after each "
                         "epoch on the training set and on the validation set (not used for training). "
                         "Dropout and batch normalization lower the training figure the same way they raise "
                         "the training loss (see the loss plot's help).")
        self.plot = self.widget.getPlotItem()
        setup_plot(self.plot, "step", "accuracy (%)")
        self.follows = [Follow(self.plot, y_limits=(0, 101))]

    def version_of(self, record):
        return record.epoch_version, record.step_version if record.diverged_step else 0

    def draw(self, r, multi, color):
        ep = r.epochs
        set_if_grown(self.curve(self.plot, (r.run_id, "train"), None, color or TRAIN_COLOR, 2, symbol="o"),
                     ep["step"].data, 100 * ep["train_accuracy"].data)
        set_if_grown(self.curve(self.plot, (r.run_id, "val"), None, color or VAL_COLOR, 2, Qt.DashLine,
                                symbol="s"), ep["step"].data, 100 * ep["val_accuracy"].data)
        self.diverged_marker(self.plot, r)

    def key_entries(self, records, multi, focus):
        if multi:
            return [(self.items[(r.run_id, "train")], r.label, r.color, Qt.SolidLine, 255) for r in records
                    if (r.run_id, "train") in self.items]
        return [(self.items[(r.run_id, kind)], text, color, style, 255) for r in records
                for kind, text, color, style in (("train", "train", TRAIN_COLOR, Qt.SolidLine),
                                                 ("val", "validation", VAL_COLOR, Qt.DashLine))
                if (r.run_id, kind) in self.items]

    def after_sync(self, records, multi, focus, changed):
        regression = records and all(not r.is_classification for r in records)
        self.set_note("Accuracy applies to classification; this task is regression (see the loss)."
                      if regression else "solid: training · dashed: validation" if multi else "")
