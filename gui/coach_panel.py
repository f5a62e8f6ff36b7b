"""The coach panel: what the coach noticed in the focus run, and what to try.

The coach itself (:mod:`engine.coach`) runs on the training thread; its
findings reach the run's record like every other event, so this panel only
lays them out: the symptom (red for a problem, amber for a warning), the
step, what the coach sees, a "Try it" button that asks the window to train
the modified variant (``try_requested``), and what the book suggests (a
tooltip, or unfolded under "The book ▸": the cell is small, and several
findings must fit).  It rebuilds only when the focus run or its number of
findings changes.
"""
from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSizePolicy, QToolButton,
                               QVBoxLayout, QWidget)

SEVERITY_COLORS = {"problem": "#c00000", "warning": "#b86e00"}
SYMPTOMS = ("vanishing or exploding gradients, dead ReLUs, saturated units, a flat loss, a learning rate too "
            "high and overfitting")
BUTTON_STYLE = ("QPushButton { background: #e8f0fb; color: #1f4e99; border: 1px solid #9db5d9; border-radius: 3px; "
                "padding: 2px 6px; } QPushButton:hover { background: #d6e4f7; } "
                "QPushButton:pressed { background: #c4d7f2; } "
                "QPushButton:disabled { background: #f0f0f0; color: #999; border-color: #ccc; }")
STAGE_TIP = ("This run is one stage of a staged experiment: it starts from another stage's weights, so it "
             "cannot be trained alone. Change the stage in the experiment file instead.")


def _label(text: str, style: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.RichText)
    label.setAlignment(Qt.AlignTop | Qt.AlignLeft)
    if style:
        label.setStyleSheet(style)
    return label


class ElidedButton(QPushButton):
    """A push button that shortens its text with "…" instead of widening the narrow panel."""

    def __init__(self, text: str, parent=None):
        super().__init__(text, parent)
        self.full_text = text
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        self.setStyleSheet(BUTTON_STYLE)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        room = max(20, self.width() - 16)
        self.setText(self.fontMetrics().elidedText(self.full_text, Qt.ElideRight, room))


class FindingCard(QFrame):
    """One finding: title and step, what is seen, the try-it button, the book's advice."""

    def __init__(self, finding, can_try: bool, on_try, expanded: bool = False, parent=None):
        super().__init__(parent)
        self.finding = finding
        color = SEVERITY_COLORS.get(finding.severity, SEVERITY_COLORS["warning"])
        self.setObjectName("finding")
        self.setStyleSheet(f"QFrame#finding {{ border-left: 3px solid {color}; background: white; }}")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 2, 4, 4)
        layout.setSpacing(1)
        self.title = _label(f"<b style='color:{color}'>{html.escape(finding.title)}</b> "
                            f"<span style='color:#777'>at step {finding.step:,}</span>")
        self.book = QToolButton(text="The book ▸", checkable=True)
        self.book.setStyleSheet("QToolButton { border: none; color: #1f4e99; }")
        self.book.setToolTip("What the book suggests")
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.title, 1)
        top.addWidget(self.book, 0, Qt.AlignTop)
        self.seen = _label(html.escape(finding.seen[:1].upper() + finding.seen[1:]) + ".")
        self.advice = _label(html.escape(finding.advice), "color: #444; font-size: 8pt;")
        for w in (self.title, self.seen):
            w.setToolTip(f"<b>What the book suggests</b><br>{html.escape(finding.advice)}")
        self.button = ElidedButton(f"Try it: {finding.try_it_label}")
        if can_try:
            self.button.setToolTip(f"{html.escape(finding.try_it_label)}: load the modified experiment into the "
                                   "editors and train it as a new run, overlaid on this one")
            self.button.clicked.connect(lambda: on_try(finding))
        else:
            self.button.setEnabled(False)
            self.button.setToolTip(STAGE_TIP)
        self.book.toggled.connect(self._show_advice)
        layout.addLayout(top)
        for w in (self.seen, self.advice, self.button):
            layout.addWidget(w)
        self.book.setChecked(expanded)
        self._show_advice(expanded)

    def _show_advice(self, on: bool) -> None:
        self.advice.setVisible(on)
        self.book.setText("The book ▾" if on else "The book ▸")


class CoachPanel(QFrame):
    """The coach's findings about the focus run (``show_run``)."""

    try_requested = Signal(object, object)   # RunRecord, Finding

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("coach")
        self.setStyleSheet("QFrame#coach { background: #f6f8fb; border: 1px solid #ddd; }")
        self.setMinimumWidth(200)
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Ignored)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 2, 2)
        layout.setSpacing(2)
        self.header = _label("")
        layout.addWidget(self.header)
        self.body = QWidget()
        self.body.setObjectName("coachBody")
        self.body.setStyleSheet("QWidget#coachBody { background: transparent; }")
        self.cards_layout = QVBoxLayout(self.body)
        self.cards_layout.setContentsMargins(0, 0, 4, 0)
        self.cards_layout.setSpacing(4)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.body)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.scroll.viewport().setStyleSheet("background: transparent;")
        layout.addWidget(self.scroll, 1)
        self.cards: list[FindingCard] = []
        self.expanded: set = set()   # (run_id, detector) of the cards whose advice is unfolded
        self.record = None
        self._key = ()
        self.rebuilds = 0
        self.show_run(None)

    def show_run(self, record) -> None:
        key = None if record is None else (record.run_id, len(record.findings), record.finished,
                                           bool(record.stage))
        if key == self._key:
            return
        self._key = key
        self.record = record
        self.rebuilds += 1
        self._clear()
        if record is None or not record.findings:
            self.header.setText(f"<b>Coach</b> — {self._idle_text(record)}")
            self.header.setToolTip("")
            self.cards_layout.addStretch(1)
            return
        n = len(record.findings)
        self.header.setText(f"<b>Coach</b> — {n} finding{'s' * (n != 1)} in {html.escape(record.name)}")
        self.header.setToolTip(f"The coach also watches for {SYMPTOMS}.")
        for finding in record.findings:
            key = (record.run_id, finding.detector)
            card = FindingCard(finding, not record.stage, self._try, key in self.expanded)
            card.book.toggled.connect(lambda on, key=key: self.expanded.add(key) if on else
                                      self.expanded.discard(key))
            self.cards.append(card)
            self.cards_layout.addWidget(card)
        self.cards_layout.addStretch(1)

    @staticmethod
    def _idle_text(record) -> str:
        if record is None:
            return f"while a run trains, it watches for {SYMPTOMS}."
        if record.run_id < 0:
            return "this run is from an earlier session; the coach watches the runs trained in this window."
        if record.finished:
            return f"saw none of the symptoms it watches for ({SYMPTOMS})."
        return f"watching for {SYMPTOMS}: nothing so far."

    def _try(self, finding) -> None:
        if self.record is not None:
            self.try_requested.emit(self.record, finding)

    def _clear(self) -> None:
        self.cards = []
        while self.cards_layout.count():
            item = self.cards_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
