"""Experiment files: one JSON schema, validated on load.

An experiment is plain data.  :func:`resolve_experiment` checks every key,
rejects unknown ones with the nearest valid name, fills in every default and
returns a new dict: the *resolved* experiment, which is what a run records in
its ``experiment.json`` and what the window edits.  This module is the top of
the schema layer (``engine/spec/``: :mod:`~engine.spec.sections` for a single
run, :mod:`~engine.spec.overrides`, :mod:`~engine.spec.compare`,
:mod:`~engine.spec.stages`) and reads experiment files and presets; the
schema is documented key by key in ``presets/README.md``, generated from
those modules.

No ``eval``, no pickle, no import of names taken from a file: names are
looked up in the registries and nowhere else.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from engine.errors import ExperimentError, nearest
from engine.limits import parse_json
from engine.spec.compare import resolve_compare
from engine.spec.sections import FORMAT_VERSION, require_mapping, resolve_single
from engine.spec.stages import resolve_stages
from engine.spec.sweep import resolve_sweep

MAX_FILE_BYTES = 4 * 1024 * 1024
PRESETS_DIR = Path(__file__).resolve().parents[2] / "presets"


BUILTIN_NAME = "spiral-default"   # the window opens on it; `main.py presets` lists it, `run` accepts it


def default_experiment() -> dict:
    """The built-in default: a 2-D spiral with the book's default choices.  Not the preset named
    ``default`` (Table 11-2 on Fashion-MNIST): this one is listed and run as ``spiral-default``."""
    return {
        "format_version": FORMAT_VERSION,
        "name": "spiral-default",
        "title": "Two spirals with the default configuration",
        "description": "He initialization, ELU, batch normalization and Nesterov momentum "
                       "(Table 11-2) on a small 2-D problem that trains in seconds.",
        "seed": 42,
        "data": {"name": "spirals", "n_samples": 1000, "noise": 0.03, "turns": 1.0},
        "model": {"layers": [{"units": 32, "activation": "elu", "initializer": "he_normal",
                              "batch_norm": "before", "use_bias": False}] * 3,
                  "output": {"activation": "auto"}},
        # 0.02: at 0.05 the coach rightly saw a bouncing loss and a validation loss creeping up
        "optimizer": {"name": "nesterov", "learning_rate": 0.02, "momentum": 0.9},
        "schedule": {"name": "constant"},
        "training": {"epochs": 150, "batch_size": 16, "log_every": 4},  # a few seconds, smooth per-layer curves
    }


def resolve_experiment(experiment: Any) -> dict:
    """Validate an experiment dict and return a new, fully resolved one.

    A single run's keys are :func:`engine.spec.sections.resolve_single`'s; the
    optional sections that repeat it are resolved on top, against the
    resolved run: ``compare`` (variants x seeds, :mod:`engine.spec.compare`),
    ``stages`` (a multi-stage workflow, :mod:`engine.spec.stages`) and ``sweep``
    (a grid or random search, :mod:`engine.spec.sweep`).
    """
    experiment = require_mapping(experiment, "the experiment")
    out = resolve_single(dict(experiment, compare=None, stages=None, sweep=None))
    if experiment.get("compare") is not None:
        out["compare"] = resolve_compare(experiment["compare"], out)
    if experiment.get("stages") is not None:
        out["stages"] = resolve_stages(experiment["stages"], out)
    if experiment.get("sweep") is not None:
        out["sweep"] = resolve_sweep(experiment["sweep"], out)
    return out


def parse_experiment_text(text: str, source: str = "experiment") -> dict:
    """JSON text -> resolved experiment; errors name the source and position.  A UTF-8 BOM is
    accepted (as in CSV files); NaN/Infinity, integers of thousands of digits and absurd nesting
    are refused (:func:`engine.limits.parse_json`)."""
    raw = parse_json(text, source, ExperimentError)
    try:
        return resolve_experiment(raw)
    except ExperimentError as exc:
        raise ExperimentError(f"{source}: {exc}") from None


# The Presets menu follows the book: a preset's "section" names the part of chapter 11 it
# illustrates, and the menu shows the sections in this order (the default configuration of
# "Practical Guidelines" first, then the chapter from its beginning).  Presets of a section not
# listed here come last; inside a section presets keep file-name order.  presets/README.md
# documents this list.
SECTIONS = (
    "Practical Guidelines",
    "Vanishing/Exploding Gradients Problems",
    "Glorot and He Initialization",
    "Nonsaturating Activation Functions",
    "Batch Normalization",
    "Gradient Clipping",
    "Reusing Pretrained Layers",
    "Unsupervised Pretraining",
    "Pretraining on an Auxiliary Task",
    "Faster Optimizers",
    "Training Sparse Models",
    "Learning Rate Scheduling",
    "Avoiding Overfitting Through Regularization",
)


def preset_menu() -> list[tuple[str, list[tuple[str, Path]]]]:
    """[(section, [(preset name, path), ...]), ...] in the book's order (see SECTIONS).

    Reads only each file's "section" (no validation); an unreadable file is
    listed under "Other" so the menu can show its error when it is chosen.
    """
    groups: dict[str, list[tuple[str, Path]]] = {}
    for name, path in preset_paths().items():
        try:
            section = json.loads(path.read_text(encoding="utf-8-sig")).get("section") or "Other"
            if not isinstance(section, str):
                section = "Other"
        except (OSError, ValueError, AttributeError):
            section = "Other"
        groups.setdefault(section, []).append((name, path))
    rank = {s: i for i, s in enumerate(SECTIONS)}
    ordered = sorted(groups, key=lambda s: (rank.get(s, len(SECTIONS)), s == "Other"))
    return [(s, groups[s]) for s in ordered]


def preset_paths() -> dict[str, Path]:
    """Shipped presets by name (file stem), in file-name order."""
    return {p.stem: p for p in sorted(PRESETS_DIR.glob("*.json"))}


def find_experiment(name_or_path: str) -> Path:
    """A preset name or a path to a JSON file."""
    path = Path(name_or_path).expanduser()
    if path.suffix == ".json" and path.is_file():
        return path
    presets = preset_paths()
    if name_or_path in presets:
        return presets[name_or_path]
    if path.is_file():
        return path
    raise ExperimentError(f"no experiment file or preset named {name_or_path!r}{nearest(name_or_path, presets)}; "
                          f"presets: {', '.join(presets) or 'none'}")


def load_experiment(name_or_path: str) -> dict:
    """Read, parse and resolve an experiment from a preset name, the built-in's name or a file."""
    if name_or_path == BUILTIN_NAME and not Path(name_or_path).is_file():
        return resolve_experiment(default_experiment())
    path = find_experiment(name_or_path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ExperimentError(f"{path}: {size / 1e6:.1f} MB is too large for an experiment file "
                                  f"(at most {MAX_FILE_BYTES // (1024 * 1024)} MB)")
        data = path.read_bytes()
    except OSError as exc:
        raise ExperimentError(f"cannot read experiment file {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ExperimentError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    experiment = parse_experiment_text(text, str(path))
    experiment["data"] = _anchor_data_path(experiment["data"], path)
    for stage in (experiment.get("stages") or {}).get("list", []):
        if stage.get("import"):  # a stage's model file, like data.path: next to the experiment file
            stage["import"] = _anchor_data_path({"path": stage["import"]}, path,
                                                f"stages ({stage['name']}).import")["path"]
    return experiment


def _anchor_data_path(data: dict, experiment_file: Path, key: str = "data.path") -> dict:
    """A relative data path in a file means 'next to this file', and may not
    climb out of that folder: a shared experiment file cannot point the app
    at files elsewhere on the user's disk by way of ``..``.  Absolute paths
    are taken as the user wrote them (the window's file dialog stores those)."""
    raw = data.get("path")
    if not isinstance(raw, str) or not raw or Path(raw).expanduser().is_absolute():
        return data
    folder = experiment_file.resolve().parent
    target = (folder / raw).resolve()
    if folder != target and folder not in target.parents:
        raise ExperimentError(f"{experiment_file}: {key} {raw!r} leads outside the experiment's folder "
                              f"{folder}; use a path inside it or an absolute path")
    return dict(data, path=str(target))


def dumps_experiment(experiment: dict) -> str:
    return json.dumps(experiment, indent=2, allow_nan=False) + "\n"


def with_overrides(experiment: dict, **sections) -> dict:
    """A deep copy with top-level sections or keys replaced, then re-resolved."""
    out = copy.deepcopy(experiment)
    for key, value in sections.items():
        out[key] = value
    return resolve_experiment(out)

