"""The pieces a results tab is built of (the Compare tab's comparisons and sweeps): a read-only
table, the report under it, zero-margin columns and the plot-over-table split, so both views lay
out alike."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QTableWidget, QVBoxLayout, QWidget


def result_table() -> QTableWidget:
    """A read-only table of results, one row per variant or trial."""
    table = QTableWidget(0, 0)
    table.setEditTriggers(QTableWidget.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    return table


def report_label() -> QLabel:
    """The notes under a table (the rule, the caveat), rich text that wraps."""
    label = QLabel()
    label.setWordWrap(True)
    label.setTextFormat(Qt.RichText)
    label.setStyleSheet("color: #333;")
    return label


def column(*parts) -> QWidget:
    """A widget stacking ``parts`` top to bottom without margins: widgets or layouts, or
    ``(widget, stretch)`` pairs."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    for part in parts:
        part, stretch = part if isinstance(part, tuple) else (part, 0)
        if isinstance(part, QWidget):
            layout.addWidget(part, stretch)
        else:
            layout.addLayout(part, stretch)
    return box


def split(first: QWidget, second: QWidget, orientation=Qt.Vertical, stretch=(3, 2)) -> QSplitter:
    """Two parts side by side (or one over the other), sharing the space ``stretch``."""
    splitter = QSplitter(orientation)
    for i, part in enumerate((first, second)):
        splitter.addWidget(part)
        splitter.setStretchFactor(i, stretch[i])
    return splitter
