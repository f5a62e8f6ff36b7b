"""From an imported stack to a Descent run-style folder.

:func:`build_experiment` turns the layers an importer found into a resolved
experiment: alone (a placeholder ``data`` section the user replaces), or on
top of an experiment given with ``--experiment``, whose layers must then
agree with the file on everything that changes predictions (units,
activation and its parameters, batch-norm placement and epsilon, bias, the
output) while its training settings (dropout, regularization, initializers,
``trainable``, momentum) are kept.  :func:`write_folder` writes

    experiment.json      the resolved experiment
    weights.safetensors  the tensors, with the metadata every Descent weights file carries (one
                         copy, as a run folder's; ``export --format npz`` writes the NPZ)
    summary.json         {"status": "imported", ...}
    import.json          the mapping report (engine.formats.importers.mapping)

into a temporary folder next to the destination and renames it at the end,
so a failed import leaves nothing behind.
"""
from __future__ import annotations

import copy
import hashlib
import math
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import ExperimentError, WeightsError
from engine.fileio import WriteError, write_json, write_text
from engine.formats import save_weights
from engine.formats.importers.mapping import REPORT_FORMAT, REPORT_VERSION, Report
from engine.formats.models import network_from_weights
from engine.formats.runlayout import WEIGHTS_SAFETENSORS
from engine.spec.experiment import dumps_experiment, resolve_experiment

STRUCTURAL = ("units", "activation", "batch_norm")      # change what the network computes
TRAINING_KEYS = ("dropout", "alpha_dropout", "bn_momentum", "trainable")   # file's value unless the experiment has one


@dataclass
class Imported:
    """A foreign network read into Descent's terms (what every importer returns)."""
    path: Path
    format: str                      # "ONNX", "Keras 3 .keras", "Keras 2 .h5", "PyTorch state_dict (safetensors)"
    producer: str                    # the program that wrote the file, when it says
    model: dict                      # {"layers": [...], "output": {...}} (unresolved)
    weights: dict                    # Descent tensor name -> float32 array
    report: Report
    n_inputs: int
    input_shape: tuple | None = None
    mean: np.ndarray | None = None   # input standardization carried by the file
    std: np.ndarray | None = None
    defines: set = field(default_factory=lambda: {"bn_epsilon"})   # layer keys the file itself defines

    @property
    def n_outputs(self) -> int:
        last = max(int(k.split(".")[1]) for k in self.weights if k.endswith(".kernel"))
        return int(self.weights[f"layers.{last}.kernel"].shape[1])

    @property
    def output(self) -> str:
        return self.model["output"]["activation"]

    @property
    def task(self) -> str:
        return "regression" if self.output == "linear" else "classification"


def _placeholder_data(imported: Imported) -> dict:
    return {"name": "npz", "path": "data.npz", "task": imported.task,
            "standardize": imported.mean is not None or imported.std is not None}


def _same_float(a, b) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-12)


def _agree(imported: Imported, experiment: dict, source: str) -> dict:
    """The experiment's model with the file's weights-defining keys checked against it."""
    theirs = experiment["model"]
    mine = imported.model
    if len(theirs["layers"]) != len(mine["layers"]):
        raise WeightsError(f"{source} has {len(mine['layers'])} hidden layers plus the output, but the experiment "
                           f"describes {len(theirs['layers'])} hidden layers: they must match one to one")
    out_layers = []
    for i, (ours, exp) in enumerate(zip(mine["layers"], theirs["layers"])):
        where = f"model.layers[{i}]"
        for key in STRUCTURAL:
            if ours[key] != exp[key]:
                raise WeightsError(f"{source}: {where}.{key}: the experiment says {exp[key]!r}, the file has "
                                   f"{ours[key]!r}")
        for key, value in ours["activation_params"].items():
            if not _same_float(value, exp["activation_params"].get(key, value)):
                raise WeightsError(f"{source}: {where}.activation_params.{key}: the experiment says "
                                   f"{exp['activation_params'][key]!r}, the file has {value!r}")
        if ours["batch_norm"] != "none" and "bn_epsilon" in imported.defines \
                and not _same_float(ours["bn_epsilon"], exp["bn_epsilon"]):
            raise WeightsError(f"{source}: {where}.bn_epsilon: the experiment says {exp['bn_epsilon']!r}, the file "
                               f"has {ours['bn_epsilon']!r} (epsilon changes what batch norm computes)")
        layer = copy.deepcopy(exp)
        _bias(imported, i, ours["use_bias"], exp["use_bias"], f"{source}: {where}")
        for key in TRAINING_KEYS:
            if key in ours and ours[key] != exp[key]:
                imported.report.convention(f"{where}.{key}: the file has {ours[key]!r}, the experiment's "
                                           f"{exp[key]!r} is used (a training setting)")
        out_layers.append(layer)
    out = copy.deepcopy(theirs["output"])
    if out["activation"] == "auto":
        out["activation"] = mine["output"]["activation"]
    elif out["activation"] != mine["output"]["activation"]:
        raise WeightsError(f"{source}: model.output.activation: the experiment says {out['activation']!r}, the "
                           f"file's output is {mine['output']['activation']!r}")
    _bias(imported, len(mine["layers"]), mine["output"]["use_bias"], out["use_bias"], f"{source}: model.output")
    return {"layers": out_layers, "output": out}


def _bias(imported: Imported, i: int, has: bool, wanted: bool, where: str) -> None:
    name = f"layers.{i}.bias"
    units = imported.weights[f"layers.{i}.kernel"].shape[1]
    if has and not wanted:
        if np.any(imported.weights[name] != 0):
            raise WeightsError(f"{where}.use_bias: the experiment says false, but the file's bias is not zero")
        del imported.weights[name]
        imported.report.convention(f"{where}: the file's bias is all zeros and the experiment has no bias: "
                                   f"left out")
    elif wanted and not has:
        imported.weights[name] = np.zeros(units, np.float32)
        imported.report.convention(f"{where}: the file has no bias; the experiment wants one: {name} starts at 0")


def build_experiment(imported: Imported, experiment: dict | None = None) -> dict:
    """The resolved experiment of an import (see the module docstring)."""
    source = imported.path.name
    if experiment is None:
        raw = {"name": f"imported-{_stem(imported.path)}",
               "title": f"Imported from {imported.path.name}",
               "description": f"A {imported.format} network imported by 'python main.py import'; its data section "
                              f"is a placeholder: choose the data to fine-tune it on.",
               "data": _placeholder_data(imported), "model": imported.model}
    else:
        raw = copy.deepcopy(experiment)
        for key in ("compare", "stages"):
            raw.pop(key, None)
        raw["model"] = _agree(imported, experiment, source)
    try:
        return resolve_experiment(raw)
    except ExperimentError as exc:
        raise WeightsError(f"{source}: the imported network is not a valid Descent experiment: {exc}") from None


def _stem(path: Path) -> str:
    name = path.name
    for ext in (".safetensors", ".keras", ".onnx", ".h5"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return path.stem


def data_metadata(imported: Imported, experiment: dict) -> dict:
    """The ``data`` entry of the weights' metadata: what predict and export need."""
    n = imported.n_inputs
    out = imported.output
    n_classes = (2 if out == "logistic" else imported.n_outputs) if imported.task == "classification" else 0
    mean = imported.mean if imported.mean is not None else np.zeros(n, np.float32)
    std = imported.std if imported.std is not None else np.ones(n, np.float32)
    if mean.shape != (n,) or std.shape != (n,):
        raise WeightsError(f"{imported.path.name}: the input standardization has {mean.size} and {std.size} values, "
                           f"the network takes {n} inputs")
    if np.any(std == 0):
        raise WeightsError(f"{imported.path.name}: the input standardization divides by zero")
    shape = imported.input_shape if imported.input_shape and len(imported.input_shape) > 1 else None
    return {"name": experiment["data"]["name"], "task": imported.task, "n_inputs": n,
            "n_outputs": imported.n_outputs, "n_classes": n_classes, "class_names": [], "feature_names": [],
            "image_shape": None if shape is None else list(shape),
            "mean": mean.astype(np.float32).tolist(), "std": std.astype(np.float32).tolist()}


def check_network(imported: Imported, metadata: dict):
    """Rebuild the Descent network from what will be written, as every reader will (and so prove it loads)."""
    return network_from_weights(dict(imported.weights), metadata, imported.path.name)


def summary_dict(imported: Imported, experiment: dict, net, experiment_source: str | None) -> dict:
    """import.json: where the file came from, what it became, and the mapping report."""
    digest = hashlib.sha256(imported.path.read_bytes()).hexdigest()
    return {"format": REPORT_FORMAT, "format_version": REPORT_VERSION,
            "source": {"path": str(imported.path), "name": imported.path.name, "format": imported.format,
                       "producer": imported.producer, "sha256": digest, "bytes": imported.path.stat().st_size},
            "experiment_from": experiment_source,
            "descent": {"name": experiment["name"], "n_inputs": imported.n_inputs, "n_outputs": net.n_outputs,
                        "output": net.output_activation, "n_params": int(net.n_params),
                        "n_layers": net.n_layers},
            **imported.report.as_dict()}


def write_folder(out: Path, experiment: dict, weights: dict, metadata: dict, summary: dict) -> Path:
    """Write the folder under a temporary name beside ``out``, then rename it (nothing is left on failure)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise WriteError(f"{out} already exists; choose a new folder with --out")
    parent = out.parent
    tmp = parent / f".{out.name}.{os.getpid()}-{secrets.token_hex(4)}.import"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()   # the usual mode (umask), unlike mkdtemp's 0700
    except OSError as exc:
        raise WriteError(f"cannot write in {parent}: {exc.strerror}") from None
    try:
        write_text(tmp / "experiment.json", dumps_experiment(experiment))
        save_weights(tmp / WEIGHTS_SAFETENSORS, weights, metadata)
        write_json(tmp / "summary.json", metadata["summary"])
        write_json(tmp / "import.json", summary)
        if out.is_dir():
            out.rmdir()   # an empty folder the user made for it
        os.rename(tmp, out)
    except OSError as exc:
        raise WriteError(f"cannot write {out}: {exc.strerror}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
