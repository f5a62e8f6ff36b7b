"""File actions of the main window: open/save experiments, presets, exports.

A mixin of :class:`gui.main_window.MainWindow` (kept apart to keep each
module short); every action also takes an explicit path, which is what the
tests and scripts use instead of the file dialogs.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from engine.errors import DescentError
from engine.spec.experiment import dumps_experiment, load_experiment

from . import menus
from .exporting import (WEIGHT_FORMATS, export_curves_csv, export_plots_png, export_weights, format_of, has_weights,
                        weight_file_filter)


class FileActions:
    def show_error(self, title: str, message: str) -> None:
        self.statusBar().showMessage(f"{title}: {message}", 15000)
        if not self._closing:
            QMessageBox.warning(self, title, message)

    def open_experiment(self, path: str | None = None) -> None:
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Open experiment", "", "Experiments (*.json);;All files (*)")
            if not path:
                return
        try:
            exp = load_experiment(path)
        except DescentError as exc:
            self.show_error("Cannot open the experiment", str(exc))
            return
        self.set_experiment(exp, source=str(path))
        menus.add_recent(self, str(path))

    def save_experiment_as(self, path: str | None = None) -> None:
        try:
            exp = self.current_experiment()
        except DescentError as exc:
            self.show_error("This experiment is not valid", str(exc))
            return
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save experiment as", f"{exp['name']}.json",
                                                  "Experiments (*.json)")
            if not path:
                return
        if not path.endswith(".json"):
            path += ".json"
        Path(path).write_text(dumps_experiment(exp), encoding="utf-8")
        menus.add_recent(self, path)
        self.statusBar().showMessage(f"saved {path}", 5000)

    def load_preset(self, exp_or_path, source: str = "") -> None:
        """Load a preset (a resolved experiment, or a path validated now) and show its explanation."""
        exp = exp_or_path
        if not isinstance(exp, dict):
            source = source or str(exp_or_path)
            try:
                exp = load_experiment(str(exp_or_path))
            except DescentError as exc:
                self.show_error("Cannot load the preset", str(exc))
                return
        self.set_experiment(exp, source=source)
        self.statusBar().showMessage(f"Loaded {exp.get('title') or exp['name']}: press Train (Space)", 8000)

    def export_weights(self, path: str | None = None) -> Path | None:
        shown = self.shown_records()
        record = self.runs.current_record() or self.focus_record(shown)
        if not has_weights(record) or not record.finished:
            self.show_error("No weights to export", "Select a finished run in the run list first.")
            return None
        if path is None:
            name = record.experiment.get("name", "run")
            path, chosen = QFileDialog.getSaveFileName(self, f"Export the weights of {record.name}",
                                                       f"{name}.safetensors", weight_file_filter())
            if not path:
                return None
            suffix = next((sfx for sfx, label in WEIGHT_FORMATS.values() if label == chosen), None)
            if suffix and format_of(Path(path)) is None:
                path += suffix
        try:
            out = export_weights(path, record)
        except (DescentError, OSError, ValueError, ImportError) as exc:
            self.show_error("Export failed", str(exc))
            return None
        self.statusBar().showMessage(f"weights written to {out}", 5000)
        return out

    def export_plots(self, path: str | None = None) -> Path | None:
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export plots as PNG", "descent-plots.png", "PNG (*.png)")
            if not path:
                return None
        out = export_plots_png(self.dashboard, path)
        self.statusBar().showMessage(f"plots written to {out}", 5000)
        return out

    def export_csv(self, path: str | None = None) -> list[Path]:
        records = self.shown_records()
        if not records:
            self.show_error("No data to export", "Check at least one run in the run list.")
            return []
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export data as CSV", "descent.csv", "CSV (*.csv)")
            if not path:
                return []
        written = export_curves_csv(records, path)
        self.statusBar().showMessage(f"wrote {', '.join(p.name for p in written)}", 5000)
        return written

