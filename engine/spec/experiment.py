"""Experiment files: one JSON schema, validated on load.

An experiment is plain data.  :func:`resolve_experiment` checks every key,
rejects unknown ones with the nearest valid name, fills in every default and
returns a new dict: the *resolved* experiment, which is what a run records in
its ``experiment.json`` and what the window edits.  The schema is documented
key by key in ``presets/README.md``; this module is its single source.

No ``eval``, no pickle, no import of names taken from a file: names are
looked up in the registries and nowhere else.
"""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

from engine.catalog.activations import ACTIVATIONS, hidden_activation_names
from engine.errors import ExperimentError, nearest
from engine.catalog.initializers import INITIALIZERS
from engine.params import Param, check_params

FORMAT_VERSION = 1
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_LAYERS = 1000
MAX_UNITS = 100_000
PRESETS_DIR = Path(__file__).resolve().parents[2] / "presets"

TOP_KEYS = ("format_version", "name", "title", "description", "section", "look_at", "seed",
            "data", "model", "loss", "optimizer", "schedule", "training", "compare", "stages")

LAYER_PARAMS = {
    "units": Param(100, "number of neurons", "int", 1, MAX_UNITS),
    "activation": Param("relu", "activation function", "choice", choices=tuple(hidden_activation_names())),
    "activation_params": Param({}, "parameters of the activation (e.g. alpha of leaky_relu)", "str"),
    "initializer": Param(None, "kernel initializer; null picks Table 11-1's match for the activation",
                         "choice", choices=tuple(INITIALIZERS.names()), optional=True),
    "initializer_params": Param({}, "parameters of the initializer (stddev, value)", "str"),
    "use_bias": Param(True, "add a bias vector (redundant right before batch norm)", "bool"),
    "batch_norm": Param("none", "batch normalization: none, before or after the activation",
                        "choice", choices=("none", "before", "after")),
    "bn_momentum": Param(0.99, "decay of BN's moving averages", low=0.0, high=1.0, high_open=True),
    "bn_epsilon": Param(1e-3, "added to the variance before the square root", low=0.0, low_open=True,
                        high=1.0),
    "dropout": Param(0.0, "fraction of this layer's outputs dropped in training", low=0.0, high=1.0,
                     high_open=True),
    "alpha_dropout": Param(False, "use alpha dropout (keeps SELU's self-normalization)", "bool"),
    "l1": Param(0.0, "l1 penalty on the kernel: l1 * sum|w|", low=0.0, high=1e3),
    "l2": Param(0.0, "l2 penalty on the kernel: l2 * sum w^2", low=0.0, high=1e3),
    "max_norm": Param(None, "max-norm constraint on each unit's incoming weights", low=0.0, low_open=True,
                      high=1e6, optional=True),
    "trainable": Param(True, "false freezes the layer (weights and BN statistics)", "bool"),
}

OUTPUT_PARAMS = {
    "activation": Param("auto", "softmax (classes), logistic (binary) or linear (regression); auto "
                        "follows the data", "choice", choices=("auto", "softmax", "logistic", "linear")),
    "initializer": Param(None, "kernel initializer; null = glorot_uniform", "choice",
                         choices=tuple(INITIALIZERS.names()), optional=True),
    "initializer_params": Param({}, "parameters of the initializer", "str"),
    "use_bias": Param(True, "add a bias vector", "bool"),
    "l1": Param(0.0, "l1 penalty on the output kernel", low=0.0, high=1e3),
    "l2": Param(0.0, "l2 penalty on the output kernel", low=0.0, high=1e3),
    "max_norm": Param(None, "max-norm constraint", low=0.0, low_open=True, high=1e6, optional=True),
    "trainable": Param(True, "false freezes the output layer", "bool"),
}

LOSSES = ("auto", "cross_entropy", "binary_cross_entropy", "mse")

EARLY_STOPPING_PARAMS = {
    "monitor": Param("val_loss", "metric watched", "choice", choices=("val_loss", "val_accuracy")),
    "patience": Param(5, "epochs without improvement before stopping", "int", 0, 100_000),
    "min_delta": Param(0.0, "smallest change that counts as an improvement", low=0.0),
    "restore_best": Param(True, "end with the weights of the best epoch", "bool"),
}

TRAINING_PARAMS = {
    "epochs": Param(10, "passes over the training set", "int", 1, 1_000_000),
    "batch_size": Param(32, "examples per gradient step", "int", 1, 10_000_000),
    "shuffle": Param(True, "reshuffle the training set every epoch", "bool"),
    "early_stopping": Param(None, "null, or {monitor, patience, min_delta, restore_best}", "str",
                            optional=True),
    "max_steps": Param(None, "stop after this many steps (overrides epochs)", "int", 1, 10**12,
                       optional=True),
    "log_every": Param(None, "steps between diagnostics records; null = about 50 per epoch", "int",
                       1, 10**9, optional=True),
    "probe_size": Param(256, "training examples in the fixed probe batch for activation statistics",
                        "int", 1, 100_000),
    "dtype": Param("float32", "floating-point precision", "choice", choices=("float32", "float64")),
    "sparsity_threshold": Param(1e-3, "|w| below this counts as zero in the sparsity figure", low=0.0),
    "mc_dropout_samples": Param(0, "2-D data: at the end of the run, one more decision surface carrying the "
                                   "Monte Carlo dropout uncertainty map from this many passes (0 = none)",
                                "int", 0, 1000),
}

OPTIMIZER_CLIP_PARAMS = {
    "clipvalue": Param(None, "clip each gradient component to [-v, v]", low=0.0, low_open=True,
                       optional=True),
    "clipnorm": Param(None, "rescale each tensor's gradient to norm <= v", low=0.0, low_open=True,
                      optional=True),
    "global_clipnorm": Param(None, "rescale the whole gradient to norm <= v", low=0.0, low_open=True,
                             optional=True),
}


def default_experiment() -> dict:
    """The built-in default: a 2-D spiral with the book's default choices."""
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


def _require_mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise ExperimentError(f"{where} must be an object ({{...}}), got {type(value).__name__}")
    return value


def _check_unknown(values: dict, allowed, where: str) -> None:
    for key in values:
        if key not in allowed:
            raise ExperimentError(f"unknown key {where}.{key}{nearest(key, allowed)}; "
                                  f"allowed: {', '.join(allowed)}")


def _resolve_named_params(spec: dict, values: Any, where: str) -> dict:
    values = {} if values is None else _require_mapping(values, where)
    return check_params(spec, values, where)


def _resolve_layer(layer: Any, where: str) -> dict:
    layer = _require_mapping(layer, where)
    scalar_spec = {k: p for k, p in LAYER_PARAMS.items() if k not in ("activation_params", "initializer_params")}
    out = check_params(scalar_spec, layer, where, ignore=("activation_params", "initializer_params"))
    activation = ACTIVATIONS.get(out["activation"])
    out["activation_params"] = _resolve_named_params(activation.params, layer.get("activation_params"),
                                                     f"{where}.activation_params")
    if activation.name == "rrelu" and out["activation_params"]["lower"] > out["activation_params"]["upper"]:
        raise ExperimentError(f"{where}.activation_params.lower must be <= upper")
    if out["initializer"] is None:
        out["initializer"] = activation.default_initializer
    out["initializer_params"] = _resolve_named_params(INITIALIZERS.get(out["initializer"]).params,
                                                      layer.get("initializer_params"),
                                                      f"{where}.initializer_params")
    # keep keys in the documented order
    return {key: out[key] for key in LAYER_PARAMS}


def _resolve_model(model: Any) -> dict:
    model = _require_mapping(model, "model")
    _check_unknown(model, ("layers", "output"), "model")
    layers = model.get("layers", [])
    if not isinstance(layers, list):
        raise ExperimentError(f"model.layers must be a list of layer objects, got {type(layers).__name__}")
    if len(layers) > MAX_LAYERS:
        raise ExperimentError(f"model.layers has {len(layers)} layers; at most {MAX_LAYERS} are allowed")
    resolved_layers = [_resolve_layer(layer, f"model.layers[{i}]") for i, layer in enumerate(layers)]
    output = _require_mapping(model.get("output", {}), "model.output")
    scalar_spec = {k: p for k, p in OUTPUT_PARAMS.items() if k != "initializer_params"}
    out = check_params(scalar_spec, output, "model.output", ignore=("initializer_params",))
    if out["initializer"] is None:
        out["initializer"] = "glorot_uniform"
    out["initializer_params"] = _resolve_named_params(INITIALIZERS.get(out["initializer"]).params,
                                                      output.get("initializer_params"),
                                                      "model.output.initializer_params")
    return {"layers": resolved_layers, "output": {key: out[key] for key in OUTPUT_PARAMS}}


def _resolve_optimizer(optimizer: Any) -> dict:
    from engine.catalog.optimizers import OPTIMIZERS  # late: the optimizer module is heavier

    optimizer = _require_mapping(optimizer, "optimizer")
    name = optimizer.get("name", "sgd")
    cls = OPTIMIZERS.get(name)
    clip = check_params(OPTIMIZER_CLIP_PARAMS, {k: v for k, v in optimizer.items() if k in OPTIMIZER_CLIP_PARAMS},
                        "optimizer")
    allowed = ("name", "learning_rate", *getattr(cls, "hyperparameters", {}), *OPTIMIZER_CLIP_PARAMS)
    _check_unknown(optimizer, allowed, "optimizer")
    rest = {k: v for k, v in optimizer.items() if k not in OPTIMIZER_CLIP_PARAMS and k != "name"}
    config = cls(**rest).get_config()  # the class validates and fills defaults
    config["name"] = name
    config.update(clip)
    return config


def _resolve_schedule(schedule: Any) -> dict:
    from engine.catalog.schedules import SCHEDULES

    schedule = _require_mapping(schedule, "schedule")
    name = schedule.get("name", "constant")
    cls = SCHEDULES.get(name)
    params = {k: v for k, v in schedule.items() if k != "name"}
    _check_unknown(params, tuple(cls.hyperparameters), "schedule")
    config = cls(**params).get_config()
    config["name"] = name
    return config


def _resolve_training(training: Any) -> dict:
    training = _require_mapping(training, "training")
    spec = {k: p for k, p in TRAINING_PARAMS.items() if k != "early_stopping"}
    out = check_params(spec, training, "training", ignore=("early_stopping",))
    es = training.get("early_stopping")
    out["early_stopping"] = None if es is None else check_params(
        EARLY_STOPPING_PARAMS, _require_mapping(es, "training.early_stopping"), "training.early_stopping")
    return {key: out[key] for key in TRAINING_PARAMS}


def _resolve_loss(loss: Any, output_activation: str) -> str:
    if loss not in LOSSES:
        raise ExperimentError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}{nearest(loss, LOSSES)}")
    pairs = {"softmax": "cross_entropy", "logistic": "binary_cross_entropy", "linear": "mse"}
    if loss != "auto" and output_activation != "auto" and pairs[output_activation] != loss:
        raise ExperimentError(f"loss {loss!r} does not fit model.output.activation {output_activation!r}; "
                              f"use {pairs[output_activation]!r} or 'auto'")
    return loss


def resolve_experiment(experiment: Any) -> dict:
    """Validate an experiment dict and return a new, fully resolved one."""
    from engine.data import resolve_data_config

    experiment = _require_mapping(experiment, "the experiment")
    _check_unknown(experiment, TOP_KEYS, "experiment")
    version = experiment.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise ExperimentError(f"format_version must be {FORMAT_VERSION}, got {version!r}")
    out: dict = {"format_version": FORMAT_VERSION}
    for key, default in (("name", "experiment"), ("title", ""), ("description", ""), ("section", ""),
                         ("look_at", "")):
        value = experiment.get(key, default)
        if not isinstance(value, str) or len(value) > 20_000:
            raise ExperimentError(f"{key} must be a string (at most 20,000 characters), got {value!r:.60}")
        out[key] = value
    seed = experiment.get("seed", 42)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ExperimentError(f"seed must be an integer from 0 to 2^32 - 1, got {seed!r}")
    out["seed"] = seed
    out["data"] = resolve_data_config(_require_mapping(experiment.get("data", {"name": "spirals"}), "data"))
    out["model"] = _resolve_model(experiment.get("model", {}))
    out["loss"] = _resolve_loss(experiment.get("loss", "auto"), out["model"]["output"]["activation"])
    out["optimizer"] = _resolve_optimizer(experiment.get("optimizer", {"name": "sgd"}))
    out["schedule"] = _resolve_schedule(experiment.get("schedule", {"name": "constant"}))
    out["training"] = _resolve_training(experiment.get("training", {}))
    # Optional sections, each resolved by the module that runs it (issue 4):
    # "compare": variants x seeds of this experiment; "stages": a multi-stage workflow.
    out["compare"] = None
    if experiment.get("compare") is not None:
        from engine.spec.compare import resolve_compare
        out["compare"] = resolve_compare(experiment["compare"], out)
    out["stages"] = None
    if experiment.get("stages") is not None:
        from engine.spec.stages import resolve_stages
        out["stages"] = resolve_stages(experiment["stages"], out)
    return out


def _reject_constant(token: str):
    raise ExperimentError(f"{token} is not valid JSON; write a finite number")


def parse_experiment_text(text: str, source: str = "experiment") -> dict:
    """JSON text -> resolved experiment; errors name the source and position."""
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ExperimentError(f"{source}: not valid JSON at line {exc.lineno}, column {exc.colno}: "
                              f"{exc.msg}") from None
    except RecursionError:
        raise ExperimentError(f"{source}: nested too deeply to be an experiment") from None
    except ExperimentError as exc:  # NaN / Infinity literals
        raise ExperimentError(f"{source}: {exc}") from None
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
            section = json.loads(path.read_text(encoding="utf-8")).get("section") or "Other"
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
    """Read, parse and resolve an experiment from a preset name or a file."""
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


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
