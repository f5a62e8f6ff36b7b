"""A staged experiment's imported stage: a network trained elsewhere, as a stage's result.

``{"name": "a", "import": "models/x.safetensors"}`` in a ``stages`` list
(:mod:`engine.spec.stages`) puts a foreign network where a trained model A
would be, so the chapter's "reuse a model from another framework" runs as
one preset: the next stages reuse its layers exactly as they reuse a stage
Descent trained.  The network is imported with the stage's resolved
experiment as its layout (a PyTorch state_dict needs it; for every format
the file must agree with it) and measured on the stage's data, so the report
shows how well the foreign model does on its own task before it is reused.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

from engine.errors import ExperimentError
from engine.formats.importers import import_model

PRESETS_DIR = Path(__file__).resolve().parents[3] / "presets"


def model_path(path: str) -> Path:
    """Absolute as ``load_experiment`` anchors it; a relative path (an experiment built in code) is
    taken in the presets folder, where shipped models live."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else PRESETS_DIR / p


def imported_stage(stage: dict, experiment: dict, data, seed: int) -> tuple:
    """(network, stage summary) of an imported stage; ``experiment`` is the stage's resolved
    (phase) experiment, ``data`` its loaded Dataset."""
    start = time.perf_counter()
    path = model_path(stage["import"])
    result = import_model(path, experiment=experiment, experiment_source=f"stage {stage['name']!r}")
    net = result.network
    where = f"stages ({stage['name']}).import: {path.name}"
    if net.n_inputs != data.n_features:
        raise ExperimentError(f"{where} takes {net.n_inputs} inputs, the stage's data have {data.n_features}")
    if data.task == "classification" and net.output_activation == "softmax" and net.n_outputs != data.n_classes:
        raise ExperimentError(f"{where} has {net.n_outputs} outputs, the stage's data {data.n_classes} classes")
    val_loss, val_acc = net.evaluate(data.x_val, data.y_val) if len(data.x_val) else (math.nan, math.nan)
    test_loss, test_acc = net.evaluate(data.x_test, data.y_test) if len(data.x_test) else (math.nan, math.nan)
    summary = {"seed": seed, "stage": stage["name"], "status": "finished", "imported_from": str(path),
               "phases": [], "val_curve": [], "steps_to_target": None, "steps": 0, "epochs": 0,
               "train_seconds": 0.0, "wall_seconds": time.perf_counter() - start, "reused_layers": 0,
               "reused_from": None, "final_val_loss": val_loss, "final_val_accuracy": val_acc,
               "best_val_accuracy": val_acc, "test_loss": test_loss, "test_accuracy": test_acc,
               "n_params": int(net.n_params)}
    return net, summary
