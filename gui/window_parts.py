"""Pieces of the main window that need none of its state: scrolling pages, the explanation
pane, the running job's clock, and the words for what a variant or the coach's suggestion changes.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFrame, QScrollArea, QTabWidget, QTextBrowser, QWidget

from engine.control import RunControl
from engine.spec.overrides import apply_overrides

from .records import RunRecord


def reverse_overrides(original: dict, overrides: dict) -> dict:
    """Overrides that put back what ``overrides`` changed in ``original`` (a resolved experiment):
    the original's values at the same keys; whole layer lists and renamed sections are copied whole."""
    out = {}
    for key, value in overrides.items():
        before = original.get(key) if isinstance(original, dict) else None
        if key == "layers" or (isinstance(value, dict) and "name" in value) or not isinstance(value, dict) \
                or not isinstance(before, dict):
            out[key] = copy.deepcopy(before)
        else:
            out[key] = reverse_overrides(before, value)
    return out


def coach_comparison(original: dict, suggested: dict, overrides: dict) -> dict:
    """A compare section for the coach's suggestion: the suggestion (the editors' experiment)
    against the experiment as it was, over the original's seeds (or the usual count)."""
    seeds = (original.get("compare") or {}).get("seeds") or 3
    before = reverse_overrides(original if not original.get("compare") else apply_overrides(original, {}),
                               overrides)
    return {"variants": [{"name": "coach's suggestion"}, {"name": "as it was", "overrides": before}],
            "seeds": len(seeds) if isinstance(seeds, list) else seeds}


def variant_changes(experiment: dict, variant: str) -> str:
    """What a comparison's variant changes, in words: "optimizer: name adam, learning_rate 0.001"."""
    for v in (experiment.get("compare") or {}).get("variants", []):
        if v.get("name") == variant:
            return describe_overrides(v.get("overrides") or {}) or "as the experiment is"
    return ""


def describe_overrides(overrides: dict, prefix: str = "") -> str:
    """Leaf keys and values of an overrides object, one phrase each ("layers: activation selu")."""
    parts = []
    for key, value in overrides.items():
        if isinstance(value, dict) and value:
            inner = describe_overrides(value, "")
            parts.append(f"{key}: {inner}" if key in ("optimizer", "schedule", "layers", "data", "training",
                                                      "output") else inner)
        elif isinstance(value, list):
            parts.append(f"{key}: {len(value)} given")
        else:
            parts.append(f"{key} {value}")
    return ", ".join(p for p in parts if p)


def scrolling(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless scroll area that resizes it: it scrolls only below its minimum size."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.NoFrame)
    return area


class Explanation(QTextBrowser):
    """The preset's explanation: read-only rich text that scrolls; ``text()`` is what it says."""

    def text(self) -> str:
        return self.toPlainText()


class PageTabs(QTabWidget):
    """Tabs whose pages may sit in a scroll area (:func:`scrolling`): ``widget``, ``currentWidget``
    and ``setCurrentWidget`` speak of the page itself, not of its scroll area."""

    @staticmethod
    def _inner(widget):
        return widget.widget() if isinstance(widget, QScrollArea) else widget

    def widget(self, index: int):
        return self._inner(super().widget(index))

    def currentWidget(self):
        return self._inner(super().currentWidget())

    def setCurrentWidget(self, widget) -> None:
        for index in range(self.count()):
            if self.widget(index) is widget or super().widget(index) is widget:
                self.setCurrentIndex(index)
                return


@dataclass
class ActiveRun:
    """The job being trained: its control and the record receiving its events."""
    job_id: int
    record: RunRecord
    control: RunControl
    records: list = None       # every record of the job (several for a staged experiment)
    wall: float = 0.0          # seconds spent running (pauses excluded), for the status bar
    last_tick: float = 0.0
    stage_count: int = 0
    writing: object = None     # the WritingFiles event of a run whose final files are being written

    def tick(self) -> float:
        """Advance the running-time clock; also keeps the record's measured steps/s."""
        now = time.monotonic()
        if self.last_tick and not self.control.paused and self.record.status == "running":
            self.wall += now - self.last_tick
        self.last_tick = now
        self.samples = [(w, s) for w, s in getattr(self, "samples", []) if self.wall - w < 2.0]
        self.samples.append((self.wall, max(self.record.step, getattr(self.record, "steps_run", 0))))
        (w0, s0), (w1, s1) = self.samples[0], self.samples[-1]
        if w1 - w0 > 0.3 and s1 >= s0:
            self.record.rate = (s1 - s0) / (w1 - w0)
        self.record.wall_seconds = self.wall
        return self.wall


LAYOUT_KEY = "layout"
DEFAULT_SIZE = (1600, 1000)   # on a larger screen; never more than the available geometry


class RemembersLayout:
    """The main window's size and splitter positions, kept in its ``settings`` between launches
    (needs ``settings``, ``splitters()`` and ``_fit_header``)."""

    def restore_layout(self) -> None:
        """The size and splitters of the last session, else a window that fits the screen: a
        1366x768 laptop must show every panel (the window used to open at 1600x1000)."""
        geometry = self.settings.value(f"{LAYOUT_KEY}/geometry")
        restored = geometry is not None and self.restoreGeometry(geometry)
        for key, splitter in self.splitters().items():
            state = self.settings.value(f"{LAYOUT_KEY}/{key}")
            if state is not None:
                splitter.restoreState(state)
                self._header_fitted = True   # the student's own layout wins over the fitted header
        screen = self.screen() or QGuiApplication.primaryScreen()
        available = screen.availableGeometry() if screen is not None else None
        if available is None or available.width() <= 0:
            if not restored:
                self.resize(*DEFAULT_SIZE)
            return
        frame = 30   # title bar and borders the window manager adds around the window
        width = min(self.width() if restored else DEFAULT_SIZE[0], available.width())
        height = min(self.height() if restored else DEFAULT_SIZE[1], available.height() - frame)
        self.resize(width, height)
        if not restored or not available.contains(self.frameGeometry()):
            self.move(available.left() + (available.width() - width) // 2,
                      available.top() + max(0, (available.height() - frame - height) // 2))

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not getattr(self, "_header_fitted", False):   # the first time it has a real width
            self._header_fitted = True
            QTimer.singleShot(0, self._fit_header)

    def save_layout(self) -> None:
        self.settings.setValue(f"{LAYOUT_KEY}/geometry", self.saveGeometry())
        for key, splitter in self.splitters().items():
            self.settings.setValue(f"{LAYOUT_KEY}/{key}", splitter.saveState())
        self.settings.sync()
