"""The Data tab's augmentation panel: the ``data.augment`` editors and what they do to images.

A student moving the rotation slider should see the network's view change, not
read about it: the panel keeps a fixed handful of training images and redraws a
grid of their augmented versions (the original in the first column) every time
a setting moves, with the same random draws each time, so only the setting's
effect changes.  Editors come from :data:`engine.data.augment.AUGMENT_PARAMS`,
like every other form; the drawing uses the engine's own augmenter, so the
grid shows exactly what training will use.
"""
from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGroupBox, QLabel, QVBoxLayout

from engine.data.augment import AUGMENT_DOC, AUGMENT_PARAMS, Augmenter, describe, is_active, resolve_augment
from engine.errors import DescentError

from .widgets.params import ParamForm

N_IMAGES = 6      # rows: the same training images every time
N_VERSIONS = 5    # columns after the original: augmented versions of each
PREVIEW_SEED = 2024


def augment_note(experiment) -> list[str]:
    """The run notes' line on augmentation (none when the run's data section has no augment key)."""
    data = experiment.get("data") if isinstance(experiment, dict) else None
    if not isinstance(data, dict) or data.get("augment") is None:
        return []
    text = describe(data["augment"])
    return [html.escape(text[:1].upper() + text[1:])]


class AugmentPanel(QGroupBox):
    """A checkable group: off = no ``augment`` key; on = the form's values and a live grid."""

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__("Data augmentation (image data)", parent)
        self.setCheckable(True)
        self.setChecked(False)
        self.setToolTip(AUGMENT_DOC)
        self.dataset = None
        self.form = ParamForm(AUGMENT_PARAMS, prefix="data.augment.", sliders=True)
        self.form.changed.connect(self._edited)
        for editor in self.form.editors.values():   # redraw while a slider is dragged, not only on release
            slider = getattr(editor, "slider", None)
            if slider is not None:
                slider.valueChanged.connect(lambda _position: self.redraw())
        self.summary = QLabel(wordWrap=True)
        self.summary.setStyleSheet("color: #555;")
        self.grid = pg.PlotWidget()
        self.grid.setMinimumHeight(140)
        self.grid.setMenuEnabled(False)
        self.grid.hideButtons()
        item = self.grid.getPlotItem()
        item.getViewBox().setMouseEnabled(x=False, y=False)
        item.hideAxis("left")
        item.hideAxis("bottom")
        self.grid.setAspectLocked(True)
        self.image = pg.ImageItem()
        self.grid.addItem(self.image)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        for widget in (self.form, self.summary, self.grid):
            layout.addWidget(widget)
        self.toggled.connect(self._toggled)
        self._toggled(False)

    # -- config ------------------------------------------------------------------------------------

    def settings(self) -> dict | None:
        """The resolved section of the current editors, or None when off."""
        if not self.isChecked():
            return None
        return resolve_augment(self.form.values(), "", "image", None)

    def config(self) -> dict:
        """What the data section gains: {"augment": {...}} when on, nothing when off."""
        return {} if not self.isChecked() else {"augment": self.form.values()}

    def set_config(self, augment: dict | None) -> None:
        self.blockSignals(True)
        self.setChecked(augment is not None)
        self.blockSignals(False)
        self.form.set_spec(AUGMENT_PARAMS, augment or {key: p.default for key, p in AUGMENT_PARAMS.items()})
        self._toggled(augment is not None, emit=False)

    def set_dataset(self, dataset) -> None:
        """The loaded data (None: none); augmentation is offered only for (height, width) images."""
        self.dataset = dataset
        images = dataset is not None and dataset.image_shape is not None and len(dataset.image_shape) == 2 \
            and dataset.task != "reconstruction"
        self.setEnabled(images)
        self.setVisible(images or self.isChecked())
        self.redraw()

    # -- drawing -----------------------------------------------------------------------------------

    def _toggled(self, on: bool, emit: bool = True) -> None:
        self.form.setVisible(on)
        self.grid.setVisible(on)
        self.redraw()
        if emit:
            self.changed.emit()

    def _edited(self) -> None:
        self.redraw()
        self.changed.emit()

    def mosaic(self) -> np.ndarray | None:
        """(rows, cols) image: each row one training image, first as it is, then augmented
        versions; None when there is nothing to draw."""
        d = self.dataset
        try:
            settings = self.settings()
        except DescentError as exc:
            self.summary.setText(f"<span style='color:#b00020'>{exc}</span>")
            return None
        if settings is None or d is None or d.image_shape is None or len(d.image_shape) != 2:
            self.summary.setText("")
            return None
        self.summary.setText(describe(settings))
        h, w = d.image_shape
        n = min(N_IMAGES, len(d.x_train))
        if n == 0:
            return None
        x = np.asarray(d.x_train[:n], dtype=np.float32)
        y = np.asarray(d.y_train[:n]) if d.task == "classification" else np.zeros(0, np.int64)
        versions = [d.to_original(x)]
        if is_active(settings):
            try:
                aug = Augmenter.for_dataset(settings, d, PREVIEW_SEED)
            except DescentError as exc:
                self.summary.setText(f"<span style='color:#b00020'>{exc}</span>")
                return None
            order = np.arange(n, dtype=np.int64)
            starts = np.array([0, n], dtype=np.int64)
            for v in range(N_VERSIONS):   # each version its own "epoch": the same draws every redraw
                versions.append(d.to_original(aug.rows(x, y.astype(np.int64), order, starts, v, 0)))
        pad = 2
        out = np.full((n * (h + pad), len(versions) * (w + pad)), np.nan, dtype=np.float32)
        for c, rows in enumerate(versions):
            images = rows.reshape(n, h, w)
            for r in range(n):
                out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = images[r]
        return out

    def redraw(self) -> None:
        if not self.isVisible() and self.dataset is None:
            return
        mosaic = self.mosaic()
        if mosaic is None:
            self.image.clear()
            return
        finite = mosaic[np.isfinite(mosaic)]
        lo, hi = float(finite.min()), float(finite.max())
        self.image.setImage(np.nan_to_num(mosaic, nan=lo)[::-1], autoLevels=False)
        self.image.setLevels((hi, lo if hi > lo else hi - 1.0))   # dark ink on white, like the preview
        self.grid.autoRange(padding=0.0)
