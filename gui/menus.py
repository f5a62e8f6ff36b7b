"""The menu bar: File, Presets, Help.

Presets come from ``engine.spec.experiment.preset_paths()`` (the ``presets/``
folder), grouped by each file's ``section`` in file order; choosing one loads
it and shows its explanation above the editors.
"""
from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMessageBox

from engine.spec.experiment import default_experiment, preset_paths, resolve_experiment

from .importing import import_model

MAX_RECENT = 8
RECENT_KEY = "recent_experiments"


def builtin_experiments() -> list[dict]:
    """Always available, even with an empty presets/ folder."""
    fashion = {
        "name": "fashion-mnist-default",
        "title": "Fashion-MNIST with the default configuration (Table 11-2)",
        "description": "784-300-100-10: He initialization, ELU, batch normalization before each activation, "
                       "Nesterov momentum, batch 32. About 85% validation accuracy after the first epoch.",
        "section": "Built in",
        "data": {"name": "fashion_mnist"},
        "model": {"layers": [{"units": 300, "activation": "elu", "initializer": "he_normal",
                              "batch_norm": "before", "use_bias": False},
                             {"units": 100, "activation": "elu", "initializer": "he_normal",
                              "batch_norm": "before", "use_bias": False}]},
        "optimizer": {"name": "nesterov", "learning_rate": 0.01, "momentum": 0.9},
        "training": {"epochs": 10, "batch_size": 32},
    }
    default = dict(default_experiment(), section="Built in")
    return [resolve_experiment(default), resolve_experiment(fashion)]


def _peek(path: Path) -> dict:
    """title/description/data name of a preset without validating it (done when chosen)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return raw if isinstance(raw, dict) else {}
    except (OSError, ValueError):
        return {}


def preset_groups() -> list[tuple[str, list[tuple[str, str, str]]]]:
    """[(section, [(title, description, path or "builtin:i")])] in the book's order, built-ins last."""
    try:
        from engine.spec.experiment import preset_menu
        sections = preset_menu()
    except ImportError:  # older engine: one group per "section", file order
        sections = {}
        for name, path in preset_paths().items():
            sections.setdefault(_peek(path).get("section") or "Other", []).append((name, path))
        sections = list(sections.items())
    groups = []
    uses_fashion = False
    for section, entries in sections:
        items = []
        for name, path in entries:
            raw = _peek(path)
            uses_fashion |= isinstance(raw.get("data"), dict) and raw["data"].get("name") == "fashion_mnist"
            items.append((raw.get("title") or name, raw.get("description") or "", str(path)))
        groups.append((section, items))
    builtins = []
    for i, exp in enumerate(builtin_experiments()):
        if exp["data"]["name"] == "fashion_mnist" and uses_fashion:
            continue
        builtins.append((exp["title"], exp["description"], f"builtin:{i}"))
    groups.append(("Built in", builtins))
    return groups


def build_menus(window) -> None:
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")

    def add(menu, text, slot, keys=None, tip=""):
        action = QAction(text, window)
        if keys:
            action.setShortcut(QKeySequence(keys))
        action.setStatusTip(tip)
        action.triggered.connect(lambda _=False: slot())
        menu.addAction(action)
        return action

    add(file_menu, "&Open experiment…", window.open_experiment, QKeySequence.Open, "Load an experiment JSON file")
    add(file_menu, "&Save experiment as…", window.save_experiment_as, "Ctrl+S",
        "Write the editors' experiment as JSON")
    add(file_menu, "&Import model…", lambda: import_model(window), None,
        "A network trained in Keras, PyTorch or ONNX, into the builder with its weights (issue 16)")
    window.recent_menu = file_menu.addMenu("Recent")
    rebuild_recent(window)
    file_menu.addSeparator()
    window.export_weights_action = add(file_menu, "Export &weights…", window.export_weights, "Ctrl+E",
                                       "Write the selected run's final weights")
    add(file_menu, "Export plots as &PNG…", window.export_plots, None, "A picture of all plots")
    add(file_menu, "Export data as &CSV…", window.export_csv, None, "The checked runs' curves as CSV files")
    file_menu.addSeparator()
    add(file_menu, "&Quit", window.close, QKeySequence.Quit)

    window.presets_menu = bar.addMenu("&Presets")
    window.presets_menu.setToolTipsVisible(True)
    rebuild_presets(window)

    help_menu = bar.addMenu("&Help")
    add(help_menu, "Keyboard shortcuts", lambda: QMessageBox.information(window, "Keyboard shortcuts", SHORTCUTS))
    add(help_menu, "About Descent", lambda: QMessageBox.about(window, "About Descent", ABOUT))


def rebuild_presets(window) -> None:
    menu = window.presets_menu
    menu.clear()
    for section, entries in preset_groups():
        sub = menu.addMenu(section)
        sub.setToolTipsVisible(True)
        for title, description, source in entries:
            action = QAction(title, window)
            action.setToolTip(description or title)
            action.setStatusTip(description[:200])
            action.triggered.connect(lambda _=False, s=source: load_source(window, s))
            sub.addAction(action)


def load_source(window, source: str) -> None:
    if source.startswith("builtin:"):
        window.load_preset(builtin_experiments()[int(source.split(":")[1])], "built in")
    else:
        window.load_preset(source)


def rebuild_recent(window) -> None:
    menu = window.recent_menu
    menu.clear()
    paths = [p for p in (window.settings.value(RECENT_KEY, []) or []) if isinstance(p, str)]
    if isinstance(paths, str):
        paths = [paths]
    for path in paths:
        action = QAction(Path(path).name, window)
        action.setToolTip(path)
        action.setStatusTip(path)
        action.triggered.connect(lambda _=False, p=path: window.open_experiment(p))
        menu.addAction(action)
    menu.setEnabled(bool(paths))


def add_recent(window, path: str) -> None:
    paths = window.settings.value(RECENT_KEY, []) or []
    if isinstance(paths, str):
        paths = [paths]
    path = str(Path(path).resolve())
    paths = [path] + [p for p in paths if p != path]
    window.settings.setValue(RECENT_KEY, paths[:MAX_RECENT])
    rebuild_recent(window)


SHORTCUTS = """Space or Ctrl+Enter: Train / Pause / Resume
P: Pause / Resume
S: one optimizer step (starts a paused run when idle)
Shift+S: run to the end of the epoch
Esc: Stop
Ctrl+R: Reset (fresh weights, same seed)
Ctrl+O / Ctrl+S: open / save an experiment
Ctrl+E: export the selected run's weights"""

ABOUT = ("<b>Descent</b>: a playground for training deep dense networks "
         "(chapter 11 of <i>Hands-On Machine Learning</i>, “Training Deep Neural Networks”).<br>"
         "Headless: <code>python main.py run NAME</code>.")
