"""File -> Import model…: a network trained elsewhere, in the builder with its weights.

The import itself is :mod:`engine.formats.importers` (the same as ``python
main.py import``).  Here the imported architecture replaces the editors'
model (the data, optimizer and training sections stay as they are: choose
the data to fine-tune on), the folder is written next to the other runs,
and the mapping report is shown.  The next Train starts from the imported
weights as long as the builder still describes the imported architecture;
after an edit that changes it, training starts from fresh weights (the
status bar says which).

A PyTorch state_dict carries no activations: the builder's current model is
taken as its layout, and when that does not fit, the user is asked for the
activations (one per Linear layer, as ``--activations`` takes them).
"""
from __future__ import annotations

import copy
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from engine.errors import DescentError

FILTER = ("Models (*.onnx *.keras *.h5 *.safetensors);;ONNX (*.onnx);;Keras (*.keras *.h5);;"
          "PyTorch state_dict (*.safetensors);;All files (*)")
STRUCTURAL = ("units", "activation", "activation_params", "batch_norm", "bn_epsilon", "use_bias")


def _structure(model: dict) -> list:
    rows = [tuple(layer.get(k) for k in STRUCTURAL) for layer in model["layers"]]
    return rows + [(model["output"]["activation"], model["output"]["use_bias"])]


def import_model(window, path: str | None = None, activations: str | None = None, show: bool = True):
    """Import ``path`` (a file dialog when None) into ``window``; returns the ImportResult or None."""
    from engine.formats.importers import import_model as engine_import, import_to_folder

    if path is None:
        path, _ = QFileDialog.getOpenFileName(window, "Import a model trained elsewhere", "", FILTER)
        if not path:
            return None
    options = {}
    try:
        current = window.current_experiment()
    except DescentError:
        current = None
    if str(path).lower().endswith(".safetensors"):
        options = {"activations": activations} if activations else {"experiment": current}
    try:
        try:
            engine_import(path, **options)     # everything but writing: refuse before any folder exists
        except DescentError as exc:
            if "activations" in options or not str(path).lower().endswith(".safetensors") or not show:
                raise
            text, ok = QInputDialog.getText(
                window, "Activations of the PyTorch model",
                f"The builder's model does not fit this state_dict ({exc}).\n\nOne activation per Linear layer, "
                f"bn+ / +bn for batch norm before / after it, the output last:", text="relu,relu,softmax")
            if not ok:
                return None
            options = {"activations": text}
        if window.run_root is not None:
            from engine.formats.runstore import default_run_dir

            name = f"imported-{Path(path).name.split('.')[0]}"
            result, folder = import_to_folder(path, default_run_dir(name, window.run_root), **options)
        else:
            result, folder = engine_import(path, **options), None
    except DescentError as exc:
        window.show_error("Cannot import the model", str(exc))
        return None
    exp = copy.deepcopy(current) if current is not None else copy.deepcopy(result.experiment)
    exp["model"] = copy.deepcopy(result.experiment["model"])
    for key in ("name", "title", "description"):
        exp[key] = result.experiment[key]
    window.set_experiment(exp, source=str(path))
    window.imported = {"model": copy.deepcopy(window.current_experiment()["model"]),
                       "weights": dict(result.weights), "source": str(path)}
    where = f"; folder {folder}" if folder is not None else ""
    window.statusBar().showMessage(f"Imported {result.summary['source']['name']}: Train fine-tunes it from the "
                                   f"imported weights{where}", 15000)
    if show and not window._closing:
        box = QMessageBox(QMessageBox.Information, "Model imported", _summary_line(result), parent=window)
        box.setDetailedText(result.text())
        box.setModal(False)
        box.show()
        window.import_report_box = box
    return result


def _summary_line(result) -> str:
    d = result.summary["descent"]
    return (f"{result.summary['source']['name']} ({result.summary['source']['format']}): {d['n_inputs']} inputs, "
            f"{d['n_layers'] - 1} hidden layers, {d['n_outputs']} outputs ({d['output']}), {d['n_params']:,} "
            f"parameters. The tensor mapping is under 'Show Details'.")


def initial_weights(window, experiment: dict):
    """The imported weights when ``experiment`` still has the imported architecture, else None."""
    imported = getattr(window, "imported", None)
    if not imported:
        return None
    if _structure(experiment["model"]) != _structure(imported["model"]):
        window.statusBar().showMessage("The model differs from the imported one: training starts from fresh "
                                       "weights", 8000)
        return None
    return imported["weights"]
