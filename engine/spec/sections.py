"""The schema of a single run's experiment: every key but ``compare`` and ``stages``.

:func:`resolve_single` checks the top-level keys and the ``data``, ``model``,
``loss``, ``optimizer``, ``schedule`` and ``training`` sections, rejects
unknown keys with the nearest valid name and fills in every default.  The
optional sections that repeat a run (``compare``: variants x seeds;
``stages``: a multi-stage workflow) are resolved on top of it by
:func:`engine.spec.experiment.resolve_experiment`; their variants, stages and
phases are single runs again, resolved here (through
:mod:`engine.spec.overrides`).  This order -- sections, overrides,
compare/stages, experiment -- is why no module of ``engine.spec`` needs
another one above it.

Names are looked up in the registries (:mod:`engine.catalog`,
:data:`engine.data.DATASETS`) and nowhere else.
"""
from __future__ import annotations

from typing import Any

from engine.catalog.activations import ACTIVATIONS, HIDDEN_ACTIVATIONS, output_activation_names
from engine.catalog.initializers import INITIALIZERS
from engine.catalog.optimizers import OPTIMIZERS
from engine.catalog.schedules import SCHEDULES
from engine.data import resolve_data_config
from engine.errors import ExperimentError, nearest
from engine.params import Param, check_params

FORMAT_VERSION = 1
MAX_LAYERS = 1000
MAX_UNITS = 100_000

REPEATING_KEYS = ("compare", "stages", "sweep")   # resolved by engine.spec.experiment
TOP_KEYS = ("format_version", "name", "title", "description", "section", "look_at", "seed",
            "data", "model", "loss", "optimizer", "schedule", "training", "compare", "stages", "sweep")

LAYER_PARAMS = {
    "units": Param(100, "number of neurons", "int", 1, MAX_UNITS),
    "activation": Param("relu", "activation function", "choice", choices=HIDDEN_ACTIVATIONS),
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
                        "follows the data", "choice", choices=("auto", *output_activation_names())),
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
    "patience": Param(5, "stop at this many epochs in a row without improvement (Keras's rule; 0 acts as 1)",
                      "int", 0, 100_000),
    "min_delta": Param(0.0, "a loss must fall, an accuracy rise, by more than this to count as an improvement",
                       low=0.0),
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


def require_mapping(value: Any, where: str) -> dict:
    """``value`` if it is an object (a dict), else an error naming ``where``."""
    if not isinstance(value, dict):
        raise ExperimentError(f"{where} must be an object ({{...}}), got {type(value).__name__}")
    return value


def check_unknown(values: dict, allowed, where: str) -> None:
    """Reject a key of ``values`` not in ``allowed``, naming the nearest allowed one."""
    for key in values:
        if key not in allowed:
            raise ExperimentError(f"unknown key {where}.{key}{nearest(key, allowed)}; "
                                  f"allowed: {', '.join(allowed)}")


def _resolve_named_params(spec: dict, values: Any, where: str) -> dict:
    values = {} if values is None else require_mapping(values, where)
    return check_params(spec, values, where)


def _resolve_layer(layer: Any, where: str) -> dict:
    layer = require_mapping(layer, where)
    scalar_spec = {k: p for k, p in LAYER_PARAMS.items() if k not in ("activation_params", "initializer_params")}
    out = check_params(scalar_spec, layer, where, ignore=("activation_params", "initializer_params"))
    activation = ACTIVATIONS.get(out["activation"])
    out["activation_params"] = _resolve_named_params(activation.params, layer.get("activation_params"),
                                                     f"{where}.activation_params")
    activation.check_params(out["activation_params"], f"{where}.activation_params")
    if out["initializer"] is None:
        out["initializer"] = activation.default_initializer
    out["initializer_params"] = _resolve_named_params(INITIALIZERS.get(out["initializer"]).params,
                                                      layer.get("initializer_params"),
                                                      f"{where}.initializer_params")
    # keep keys in the documented order
    return {key: out[key] for key in LAYER_PARAMS}


def _resolve_model(model: Any) -> dict:
    model = require_mapping(model, "model")
    check_unknown(model, ("layers", "output"), "model")
    layers = model.get("layers", [])
    if not isinstance(layers, list):
        raise ExperimentError(f"model.layers must be a list of layer objects, got {type(layers).__name__}")
    if len(layers) > MAX_LAYERS:
        raise ExperimentError(f"model.layers has {len(layers)} layers; at most {MAX_LAYERS} are allowed")
    resolved_layers = [_resolve_layer(layer, f"model.layers[{i}]") for i, layer in enumerate(layers)]
    output = require_mapping(model.get("output", {}), "model.output")
    scalar_spec = {k: p for k, p in OUTPUT_PARAMS.items() if k != "initializer_params"}
    out = check_params(scalar_spec, output, "model.output", ignore=("initializer_params",))
    if out["initializer"] is None:
        out["initializer"] = "glorot_uniform"
    out["initializer_params"] = _resolve_named_params(INITIALIZERS.get(out["initializer"]).params,
                                                      output.get("initializer_params"),
                                                      "model.output.initializer_params")
    return {"layers": resolved_layers, "output": {key: out[key] for key in OUTPUT_PARAMS}}


def _resolve_optimizer(optimizer: Any) -> dict:
    optimizer = require_mapping(optimizer, "optimizer")
    name = optimizer.get("name", "sgd")
    cls = OPTIMIZERS.get(name)
    clip = check_params(OPTIMIZER_CLIP_PARAMS, {k: v for k, v in optimizer.items() if k in OPTIMIZER_CLIP_PARAMS},
                        "optimizer")
    allowed = ("name", "learning_rate", *getattr(cls, "hyperparameters", {}), *OPTIMIZER_CLIP_PARAMS)
    check_unknown(optimizer, allowed, "optimizer")
    rest = {k: v for k, v in optimizer.items() if k not in OPTIMIZER_CLIP_PARAMS and k != "name"}
    config = cls(**rest).get_config()  # the class validates and fills defaults
    config["name"] = name
    config.update(clip)
    return config


def _resolve_schedule(schedule: Any) -> dict:
    schedule = require_mapping(schedule, "schedule")
    name = schedule.get("name", "constant")
    cls = SCHEDULES.get(name)
    params = {k: v for k, v in schedule.items() if k != "name"}
    check_unknown(params, tuple(cls.hyperparameters), "schedule")
    config = cls(**params).get_config()
    config["name"] = name
    return config


def _resolve_training(training: Any) -> dict:
    training = require_mapping(training, "training")
    spec = {k: p for k, p in TRAINING_PARAMS.items() if k != "early_stopping"}
    out = check_params(spec, training, "training", ignore=("early_stopping",))
    es = training.get("early_stopping")
    out["early_stopping"] = None if es is None else check_params(
        EARLY_STOPPING_PARAMS, require_mapping(es, "training.early_stopping"), "training.early_stopping")
    return {key: out[key] for key in TRAINING_PARAMS}


def _resolve_loss(loss: Any, output_activation: str) -> str:
    if loss not in LOSSES:
        raise ExperimentError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}{nearest(loss, LOSSES)}")
    paired = None if output_activation == "auto" else ACTIVATIONS.get(output_activation).loss
    if loss != "auto" and paired is not None and paired != loss:
        raise ExperimentError(f"loss {loss!r} does not fit model.output.activation {output_activation!r}; "
                              f"use {paired!r} or 'auto'")
    return loss


def resolve_single(experiment: Any) -> dict:
    """Validate a single run's experiment and return a new, fully resolved one.

    ``compare``, ``stages`` and ``sweep`` must be missing or null (they come out null):
    :func:`engine.spec.experiment.resolve_experiment` resolves an experiment
    that has them.
    """
    experiment = require_mapping(experiment, "the experiment")
    check_unknown(experiment, TOP_KEYS, "experiment")
    for key in REPEATING_KEYS:
        if experiment.get(key) is not None:
            raise ExperimentError(f"a single run has no {key} section; resolve the experiment that has it "
                                  f"with engine.spec.experiment.resolve_experiment")
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
    out["data"] = resolve_data_config(require_mapping(experiment.get("data", {"name": "spirals"}), "data"))
    out["model"] = _resolve_model(experiment.get("model", {}))
    out["loss"] = _resolve_loss(experiment.get("loss", "auto"), out["model"]["output"]["activation"])
    out["optimizer"] = _resolve_optimizer(experiment.get("optimizer", {"name": "sgd"}))
    out["schedule"] = _resolve_schedule(experiment.get("schedule", {"name": "constant"}))
    out["training"] = _resolve_training(experiment.get("training", {}))
    out["compare"] = None
    out["stages"] = None
    out["sweep"] = None
    return out
