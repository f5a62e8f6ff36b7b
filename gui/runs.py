"""The run list: every run of the session (and earlier ones from ``runs/``).

Columns: run, configuration summary, best validation metric, status.  The
check box of a run overlays its curves in every plot, one colour per run.
The newest run is checked automatically and unchecked when the next one
starts, unless the user checked it by hand (then it stays, for comparing).
Double-click (or the context menu) re-loads a run's experiment into the
editors.
"""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QBrush, QColor, QDesktopServices, QIcon, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QTreeWidget, QTreeWidgetItem

from .dashboard import STATUS_COLORS
from .plots import run_color
from .records import RunRecord, record_from_folder, summarize

COLUMNS = ("Run", "Configuration", "Best val", "Status")


def swatch(color: str) -> QIcon:
    pix = QPixmap(12, 12)
    pix.fill(QColor(color))
    return QIcon(pix)


class RunList(QTreeWidget):
    checked_changed = Signal()
    focus_changed = Signal()
    load_requested = Signal(object)    # RunRecord

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setColumnCount(len(COLUMNS))
        self.setHeaderLabels(COLUMNS)
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setSelectionMode(QAbstractItemView.SingleSelection)
        self.setAlternatingRowColors(True)
        header = self.header()
        header.setSectionResizeMode(0, QHeaderView.Interactive)
        header.setSectionResizeMode(1, QHeaderView.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeToContents)
        header.setStretchLastSection(False)
        self.setColumnWidth(0, 140)
        self.setToolTip("Check runs to overlay their curves (one colour per run). Double-click a run to load "
                        "its experiment into the editors; right-click for more.")
        self.setContextMenuPolicy(Qt.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.itemChanged.connect(self._item_changed)
        self.itemDoubleClicked.connect(lambda item, _col: self.load_requested.emit(self.record_of(item)))
        self.currentItemChanged.connect(lambda *_: self.focus_changed.emit())
        self.items: dict[int, QTreeWidgetItem] = {}
        self.records: dict[int, RunRecord] = {}
        self.user_checked: set[int] = set()
        self._color_index = 0
        self._versions: dict[int, tuple] = {}
        self._updated_at: dict[int, float] = {}
        self._updating = False

    # -- adding and updating -------------------------------------------------------------------

    def add(self, record: RunRecord, checked: bool = True, auto: bool = True) -> None:
        self._updating = True
        if auto:
            for run_id, item in self.items.items():
                if run_id not in self.user_checked and item.checkState(0) == Qt.Checked:
                    item.setCheckState(0, Qt.Unchecked)
        record.color = run_color(self._color_index)
        self._color_index += 1
        item = QTreeWidgetItem()
        item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
        item.setCheckState(0, Qt.Checked if checked else Qt.Unchecked)
        item.setIcon(0, swatch(record.color))
        item.setData(0, Qt.UserRole, record.run_id)
        self.insertTopLevelItem(0, item)
        self.items[record.run_id] = item
        self.records[record.run_id] = record
        self._updating = False
        self.update_record(record)
        if checked:
            self.setCurrentItem(item)
        self.checked_changed.emit()

    def update_record(self, record: RunRecord) -> None:
        item = self.items.get(record.run_id)
        if item is None:
            return
        key = (record.version, record.shown_status)
        last = self._versions.get(record.run_id)
        if last == key or (last is not None and last[1] == record.shown_status
                           and time.monotonic() - self._updated_at.get(record.run_id, 0.0) < 0.5):
            return   # unchanged, or a running run updated less than half a second ago
        self._updated_at[record.run_id] = time.monotonic()
        self._versions[record.run_id] = key
        self._updating = True
        item.setText(0, record.name)
        item.setText(1, summarize(record.experiment))
        item.setText(2, record.best_val_text())
        status = record.shown_status
        if record.status == "diverged" and record.diverged_step:
            status += f" @ {record.diverged_step:,}"
        item.setText(3, status)
        item.setForeground(3, QBrush(QColor(STATUS_COLORS.get(status, STATUS_COLORS.get(record.status, "#222")))))
        tip = f"{record.name}\n{summarize(record.experiment)}\nstatus: {record.status}"
        if record.reason:
            tip += f"\n{record.reason}"
        if record.folder is not None:
            tip += f"\nfolder: {record.folder}"
        for col in range(len(COLUMNS)):
            item.setToolTip(col, tip)
        self._updating = False

    def load_folders(self, root: Path, first_id: int, limit: int = 30) -> int:
        """Add earlier runs found under ``root`` (unchecked); returns the next free run id."""
        root = Path(root)
        if not root.is_dir():
            return first_id
        folders = sorted((p for p in root.iterdir() if (p / "experiment.json").is_file()), key=lambda p: p.name)
        run_id = first_id
        for folder in folders[-limit:]:
            record = record_from_folder(folder, run_id)
            self.add(record, checked=False, auto=False)
            run_id += 1
        self.setCurrentItem(None)
        return run_id

    def remove(self, run_id: int) -> None:
        item = self.items.pop(run_id, None)
        self.records.pop(run_id, None)
        self.user_checked.discard(run_id)
        if item is not None:
            self.takeTopLevelItem(self.indexOfTopLevelItem(item))
        self.checked_changed.emit()

    # -- queries -------------------------------------------------------------------------------

    def record_of(self, item) -> RunRecord | None:
        return None if item is None else self.records.get(item.data(0, Qt.UserRole))

    def checked_records(self) -> list[RunRecord]:
        """Checked runs, oldest first (stable colours and legend order)."""
        out = [self.records[rid] for rid, item in self.items.items() if item.checkState(0) == Qt.Checked]
        return sorted(out, key=lambda r: r.run_id)

    def is_checked(self, run_id: int) -> bool:
        item = self.items.get(run_id)
        return item is not None and item.checkState(0) == Qt.Checked

    def set_checked(self, run_id: int, checked: bool, by_user: bool = True) -> None:
        item = self.items.get(run_id)
        if item is not None:
            if by_user and checked:
                self.user_checked.add(run_id)
            self._updating = True
            item.setCheckState(0, Qt.Checked if checked else Qt.Unchecked)
            self._updating = False
            self.checked_changed.emit()

    def current_record(self) -> RunRecord | None:
        return self.record_of(self.currentItem())

    # -- reactions -----------------------------------------------------------------------------

    def _item_changed(self, item, column: int) -> None:
        if self._updating or column != 0:
            return
        run_id = item.data(0, Qt.UserRole)
        if item.checkState(0) == Qt.Checked:
            self.user_checked.add(run_id)
        else:
            self.user_checked.discard(run_id)
        self.checked_changed.emit()

    def _menu(self, pos) -> None:
        record = self.record_of(self.itemAt(pos))
        if record is None:
            return
        menu = QMenu(self)
        menu.addAction("Load into the editors", lambda: self.load_requested.emit(record))
        if record.folder is not None:
            menu.addAction("Open run folder", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(record.folder))))
        if record.finished:
            menu.addAction("Remove from the list", lambda: self.remove(record.run_id))
        menu.exec(self.viewport().mapToGlobal(pos))
