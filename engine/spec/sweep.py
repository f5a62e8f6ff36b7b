"""The ``sweep`` section: a grid or random search over any keys of an experiment (schema only).

::

    "sweep": {
      "method": "grid",                                        # or "random" (then "trials": N)
      "parameters": {
        "optimizer.name": {"values": ["sgd", "adam"]},
        "optimizer.learning_rate": {"log_grid": {"low": 1e-4, "high": 1, "num": 9}}
      },
      "seeds": 3,                                              # every trial runs once per seed
      "metric": "auto"
    }

A parameter is a dotted key of the experiment (``optimizer.learning_rate``,
``training.batch_size``, ``model.layers.dropout`` for every hidden layer,
``model.layers[1].units`` for one layer, ``data.per_class``...) and a space
of values.  Each trial is the base experiment with its values merged in by
the one overrides rule (:func:`engine.spec.overrides.apply_overrides`): keys
under one section form one override, so sweeping ``optimizer.name`` with
``optimizer.learning_rate`` gives ``{"optimizer": {"name": "adam",
"learning_rate": 0.001}}``, Adam with its own defaults at that rate.

Why the trials are resolved when the file is loaded: a sweep is long, and a
bad value in trial 37 must be an input error at the start, naming the trial,
not a crash at minute 20.  Why a sampler seed: random search draws from
``numpy.random.default_rng(sampler_seed)``, so the same file always gives the
same trials (and the training seeds stay what they are in comparisons: the
data split, initial weights and batch order of a seed are shared by every
trial, so trials are compared paired by seed).

How the trials are run and reported lives in :mod:`engine.jobs`
(:mod:`engine.jobs.sweep_report` for the statistics); this module says what
the section may contain, validates it and expands it into :class:`Trial` s.
"""
from __future__ import annotations

import copy
import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from engine.errors import ExperimentError, nearest
from engine.spec.compare import VERDICT_METRICS
from engine.spec.seeds import SWEEP_SEEDS, seed_list
from engine.spec.overrides import OVERRIDABLE, apply_overrides

SECTION_KEYS = ("method", "parameters", "trials", "seeds", "metric", "sampler_seed")
METHODS = ("grid", "random")
DISCRETE_SPACES = ("values", "grid", "log_grid")            # a finite list: enumerated or drawn from
CONTINUOUS_SPACES = ("uniform", "log_uniform", "int_uniform")  # random search only
SPACES = DISCRETE_SPACES + CONTINUOUS_SPACES
LOG_SPACES = ("log_grid", "log_uniform")
RANGE_KEYS = ("low", "high", "num")
MAX_TRIALS = 10_000        # trials of one sweep
MAX_RUNS = 50_000          # trials x seeds: the runs one sweep may start
MAX_PARAMETERS = 16
MAX_VALUES = 1_000         # points of one space
MAX_NAME = 60              # trial names also name run folders (<name>-seed<s>)
GRID_DIGITS = 12           # grid points are rounded to 12 significant digits: 0.3, not 0.30000000000000004

# The section's keys, documented (presets/README.md is generated from these tables by
# tools/gen_schema_doc.py): (key, type, default, allowed values, meaning).
SECTION_DOC = (
    ("method", "string", "grid", ", ".join(METHODS),
     "grid: every combination of the parameters' values (the first parameter varies slowest); "
     "random: `trials` draws, each parameter drawn independently"),
    ("parameters", "object", "required", f"1 to {MAX_PARAMETERS} dotted keys, each with a space (below)",
     "the keys varied and their values; keys under one section merge into one override (the overrides rules of compare)"),
    ("trials", "integer or null", "null", f"random: 1..{MAX_TRIALS}; grid: null",
     "number of random draws; a grid runs every combination (at most "
     f"{MAX_TRIALS:,} trials)"),
    ("seeds", "integer or list of integers", str(SWEEP_SEEDS.default_count), f"a count 1..{SWEEP_SEEDS.most} (seed, seed + 1, ...) "
     f"or distinct integers 0..2^32-1; trials x seeds <= {MAX_RUNS:,}",
     "every trial runs once per seed, with the same data, initial weights and batches per seed as the other trials"),
    ("metric", "string", "auto", ", ".join(VERDICT_METRICS),
     "the final validation metric trials are ranked and compared by; auto = val_accuracy when the runs report "
     "one, else val_loss"),
    ("sampler_seed", "integer or null", "null (0 for random)", "random: 0..2^32-1; grid: null",
     "seeds numpy.random.default_rng for the draws: the same file gives the same trials"),
)

# The spaces a parameter may take: (space, form, methods, meaning).
SPACE_DOC = (
    ("values", '{"values": [v1, v2, ...]}', "grid, random",
     "these values (any JSON: numbers, names, objects); random search draws one uniformly"),
    ("grid", '{"grid": {"low": a, "high": b, "num": n}}', "grid, random",
     "n evenly spaced points from a to b (both included); integers when a and b are integers and every "
     "point is one"),
    ("log_grid", '{"log_grid": {"low": a, "high": b, "num": n}}', "grid, random",
     "n points evenly spaced on a log scale from a > 0 to b (1e-4 to 1, n = 5: 1e-4, 1e-3, 0.01, 0.1, 1)"),
    ("uniform", '{"uniform": [a, b]}', "random", "a number drawn uniformly from [a, b)"),
    ("log_uniform", '{"log_uniform": [a, b]}', "random",
     "a number whose logarithm is uniform: as many draws from 1e-4 to 1e-3 as from 0.1 to 1 (a > 0)"),
    ("int_uniform", '{"int_uniform": [a, b]}', "random", "an integer drawn uniformly from a to b, both included"),
)

# Short labels for trial names ("adam-lr1e-03"); other keys use their last name.
ABBREVIATIONS = {"learning_rate": "lr", "batch_size": "bs", "momentum": "mom", "dropout": "drop",
                 "weight_decay": "wd", "initializer": "init", "activation": "act", "per_class": "n",
                 "epochs": "ep", "max_steps": "steps", "batch_norm": "bn", "clipnorm": "clip",
                 "global_clipnorm": "gclip", "clipvalue": "clipv"}

_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d{1,6})\])?$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Trial:
    """One point of a sweep: a variant of the experiment that runs once per seed.

    ``name`` is short, readable, unique in the sweep and safe as a folder
    name; ``params`` maps each dotted key to its value; ``overrides`` is the
    partial experiment (for :func:`~engine.spec.overrides.apply_overrides`)
    that sets them.
    """
    index: int
    name: str
    params: dict = field(hash=False)
    overrides: dict = field(hash=False)

    def as_variant(self) -> dict:
        """The trial as a resolved ``compare`` variant, for a runner that trains variants x seeds."""
        return {"name": self.name, "overrides": copy.deepcopy(self.overrides), "lr_finder": None,
                "zero_weights_below": None}


# ----------------------------------------------------------------------------- keys


def parse_key(key: Any) -> tuple:
    """A dotted key as its path: ``"model.layers[1].units"`` -> ``("model", "layers", 1, "units")``.

    The first name is a section the overrides may change; an index is allowed
    only on ``model.layers`` (one hidden layer; without it a key under
    ``model.layers`` changes every hidden layer).
    """
    where = f"sweep.parameters key {key!r:.80}"
    if not isinstance(key, str) or not key:
        raise ExperimentError(f"{where} must be a dotted key such as \"optimizer.learning_rate\"")
    path: list = []
    for part in key.split("."):
        m = _SEGMENT.match(part)
        if not m:
            raise ExperimentError(f"{where}: {part!r} is not a key name (letters, digits, _; "
                                  f"an index only as model.layers[1])")
        path.append(m.group(1))
        if m.group(2) is not None:
            if tuple(path) != ("model", "layers"):
                raise ExperimentError(f"{where}: an index [i] is allowed only on model.layers "
                                      f"(model.layers[1].units is the second hidden layer)")
            path.append(int(m.group(2)))
    if path[0] not in OVERRIDABLE:
        raise ExperimentError(f"{where}: a sweep may vary keys under {', '.join(OVERRIDABLE)}; got "
                              f"{path[0]!r}{nearest(path[0], OVERRIDABLE)} (the seeds are sweep.seeds)")
    return tuple(path)


def _check_conflicts(paths: dict) -> None:
    """Two keys where one contains the other (``optimizer`` and ``optimizer.name``) cannot both be set."""
    for (ka, pa), (kb, pb) in itertools.combinations(paths.items(), 2):
        short, long_ = (pa, pb) if len(pa) <= len(pb) else (pb, pa)
        if long_[:len(short)] == short:
            raise ExperimentError(f"sweep.parameters: {ka!r} and {kb!r} overlap (one contains the other); "
                                  f"sweep one of them")


# ----------------------------------------------------------------------------- spaces


def _number(value: Any, where: str, integer: bool = False) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ExperimentError(f"{where} must be a finite number, got {value!r:.60}")
    if integer and not (isinstance(value, int) or float(value).is_integer()):
        raise ExperimentError(f"{where} must be an integer, got {value!r}")
    return int(value) if integer else value


def _resolve_space(space: Any, key: str, method: str) -> dict:
    """A parameter's space, validated; returned in the same form (the section resolves to itself)."""
    where = f"sweep.parameters[{key!r}]"
    if not isinstance(space, dict) or len(space) != 1:
        raise ExperimentError(f"{where} must be an object with one of {', '.join(SPACES)}, e.g. "
                              f"{{\"values\": [0.001, 0.01]}}, got {space!r:.60}")
    (kind, spec), = space.items()
    if kind not in SPACES:
        hint = nearest(kind, SPACES) or (" (a categorical choice is {\"values\": [...]}, drawn uniformly by "
                                         "random search)" if kind == "choice" else "")
        raise ExperimentError(f"{where}: unknown space {kind!r}{hint}; allowed: {', '.join(SPACES)}")
    if method == "grid" and kind in CONTINUOUS_SPACES:
        raise ExperimentError(f"{where}: {kind} draws at random and has no grid points; a grid search takes "
                              f"values, grid or log_grid (or use \"method\": \"random\")")
    where = f"{where}.{kind}"
    if kind == "values":
        if not isinstance(spec, list) or not 1 <= len(spec) <= MAX_VALUES:
            raise ExperimentError(f"{where} must be a list of 1 to {MAX_VALUES} values, got {spec!r:.60}")
        return {"values": copy.deepcopy(spec)}
    if kind in ("grid", "log_grid"):
        if not isinstance(spec, dict):
            raise ExperimentError(f"{where} must be {{\"low\": ..., \"high\": ..., \"num\": ...}}, got {spec!r:.60}")
        for k in spec:
            if k not in RANGE_KEYS:
                raise ExperimentError(f"unknown key {where}.{k}{nearest(k, RANGE_KEYS)}; allowed: low, high, num")
        low = _number(spec.get("low"), f"{where}.low")
        high = _number(spec.get("high"), f"{where}.high")
        num = _number(spec.get("num"), f"{where}.num", integer=True)
        if not 2 <= num <= MAX_VALUES:
            raise ExperimentError(f"{where}.num must be from 2 to {MAX_VALUES} points, got {num}")
        if not low < high:
            raise ExperimentError(f"{where}: low must be below high, got low {low!r}, high {high!r}")
        if kind == "log_grid" and low <= 0:
            raise ExperimentError(f"{where}.low must be > 0 on a log scale, got {low!r}")
        return {kind: {"low": low, "high": high, "num": num}}
    if not isinstance(spec, list) or len(spec) != 2:
        raise ExperimentError(f"{where} must be a pair [low, high], got {spec!r:.60}")
    integer = kind == "int_uniform"
    low, high = (_number(v, f"{where}[{i}]", integer) for i, v in enumerate(spec))
    if not (low <= high if integer else low < high):
        raise ExperimentError(f"{where}: low must be below high, got [{low!r}, {high!r}]")
    if kind == "log_uniform" and low <= 0:
        raise ExperimentError(f"{where}: low must be > 0 on a log scale, got {low!r}")
    return {kind: [low, high]}


def space_kind(space: Mapping) -> str:
    """The space's name: values, grid, log_grid, uniform, log_uniform or int_uniform."""
    return next(iter(space))


def space_points(space: Mapping) -> list | None:
    """The finite list of a discrete space (values, grid points), None for a continuous one.

    Grid points are rounded to 12 significant digits (so a grid from 0.1 to
    0.5 holds 0.3, and a log grid from 1e-4 to 1 holds 0.001 exactly), and
    are integers when low and high are integers and every point is one
    (a log grid from 16 to 256 in 5 points: 16, 32, 64, 128, 256).
    """
    kind = space_kind(space)
    if kind == "values":
        return copy.deepcopy(space["values"])
    if kind not in ("grid", "log_grid"):
        return None
    s = space[kind]
    if kind == "grid":
        raw = np.linspace(s["low"], s["high"], s["num"])
    else:
        raw = 10.0 ** np.linspace(math.log10(s["low"]), math.log10(s["high"]), s["num"])
    points = [float(f"{v:.{GRID_DIGITS}g}") for v in raw]
    points[0], points[-1] = float(s["low"]), float(s["high"])
    if isinstance(s["low"], int) and isinstance(s["high"], int) and all(p.is_integer() for p in points):
        return [int(p) for p in points]
    return points


def _draw(space: Mapping, points: list | None, rng: np.random.Generator) -> tuple[Any, int | None]:
    """One random value of a space (``points``: its :func:`space_points`) and its position in that
    list (None if continuous)."""
    if points is not None:
        k = int(rng.integers(len(points)))
        return points[k], k
    kind = space_kind(space)
    low, high = space[kind]
    if kind == "uniform":
        return float(rng.uniform(low, high)), None
    if kind == "log_uniform":
        return float(math.exp(rng.uniform(math.log(low), math.log(high)))), None
    return int(rng.integers(low, high + 1)), None


# ----------------------------------------------------------------------------- section


def trial_count(section: Mapping) -> int:
    """The number of trials of a resolved (or validated) sweep section, without expanding it."""
    if section["method"] == "random":
        return int(section["trials"])
    return math.prod(len(space_points(s)) for s in section["parameters"].values())


def resolve_sweep(section: Any, experiment: dict) -> dict:
    """Validate the ``sweep`` section against the resolved base experiment.

    Returns ``{"method", "parameters": {key: space}, "trials", "seeds": [...],
    "metric", "sampler_seed"}`` (it resolves to itself).  Every trial is
    expanded and resolved once here, so a bad value fails when the file is
    loaded, naming the trial and its values.
    """
    if not isinstance(section, dict):
        raise ExperimentError(f"sweep must be an object with {', '.join(SECTION_KEYS)}, got {section!r:.60}")
    for key in section:
        if key not in SECTION_KEYS:
            raise ExperimentError(f"unknown key sweep.{key}{nearest(key, SECTION_KEYS)}; "
                                  f"allowed: {', '.join(SECTION_KEYS)}")
    for other in ("compare", "stages"):
        if experiment.get(other) is not None:
            raise ExperimentError(f"an experiment has a sweep section or a {other} section, not both; "
                                  f"a sweep compares its trials itself (same seeds, same rule)")
    method = section.get("method", "grid")
    if method not in METHODS:
        raise ExperimentError(f"sweep.method must be one of {', '.join(METHODS)}, got {method!r:.40}"
                              f"{nearest(method, METHODS)}")
    raw = section.get("parameters")
    if not isinstance(raw, dict) or not 1 <= len(raw) <= MAX_PARAMETERS:
        raise ExperimentError(f"sweep.parameters must be an object of 1 to {MAX_PARAMETERS} dotted keys, each "
                              f"with a space, e.g. {{\"optimizer.learning_rate\": {{\"values\": [0.001, 0.01]}}}}, "
                              f"got {raw!r:.60}")
    paths = {key: parse_key(key) for key in raw}
    _check_conflicts(paths)
    parameters = {key: _resolve_space(space, key, method) for key, space in raw.items()}
    trials, sampler_seed = section.get("trials"), section.get("sampler_seed")
    if method == "grid":
        for key, value in (("trials", trials), ("sampler_seed", sampler_seed)):
            if value is not None:
                raise ExperimentError(f"sweep.{key} applies to random search; a grid runs every combination "
                                      f"of its values (remove {key}, or use \"method\": \"random\")")
        count = math.prod(len(space_points(s)) for s in parameters.values())
        if count > MAX_TRIALS:
            sizes = " x ".join(str(len(space_points(s))) for s in parameters.values())
            raise ExperimentError(f"sweep: the grid has {sizes} = {count:,} trials; at most {MAX_TRIALS:,} are "
                                  f"allowed (fewer points, or random search with a trial count)")
    else:
        if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= MAX_TRIALS:
            raise ExperimentError(f"sweep.trials: random search needs a trial count from 1 to {MAX_TRIALS:,}, "
                                  f"got {trials!r:.40}")
        sampler_seed = 0 if sampler_seed is None else sampler_seed
        if isinstance(sampler_seed, bool) or not isinstance(sampler_seed, int) or not 0 <= sampler_seed < 2**32:
            raise ExperimentError(f"sweep.sampler_seed must be an integer from 0 to 2^32 - 1, got {sampler_seed!r:.40}")
        count = trials
    seeds = seed_list(section.get("seeds"), experiment["seed"], SWEEP_SEEDS)
    if count * len(seeds) > MAX_RUNS:
        raise ExperimentError(f"sweep: {count:,} trials x {len(seeds)} seeds = {count * len(seeds):,} runs; at most "
                              f"{MAX_RUNS:,} are allowed (fewer trials or seeds)")
    metric = section.get("metric", "auto")
    if metric not in VERDICT_METRICS:
        raise ExperimentError(f"sweep.metric must be one of {', '.join(VERDICT_METRICS)}, got {metric!r:.40}"
                              f"{nearest(metric, VERDICT_METRICS)}")
    out = {"method": method, "parameters": parameters, "trials": trials, "seeds": seeds, "metric": metric,
           "sampler_seed": sampler_seed}
    base = _without_sweep(experiment)
    for trial in _expand(out, base):
        try:
            apply_overrides(base, trial.overrides)
        except ExperimentError as exc:
            raise _trial_error(trial.index, trial.name, trial.params, exc) from None
    return out


def sweep_trials(experiment: Mapping) -> list[Trial]:
    """The trials of a resolved experiment's sweep, in order (grid: the first parameter varies slowest).

    The same experiment always gives the same trials: random search draws
    from ``numpy.random.default_rng(sampler_seed)``, one value per parameter
    per trial, in the order the parameters are written.
    """
    cfg = experiment.get("sweep")
    if not cfg:
        raise ExperimentError("this experiment has no sweep section")
    return _expand(cfg, _without_sweep(experiment))


def trial_experiment(experiment: Mapping, trial: Trial, seed: int) -> dict:
    """The resolved experiment one (trial, seed) run trains: no sweep section, ``seed`` set."""
    exp = apply_overrides(_without_sweep(experiment), trial.overrides)
    exp["seed"] = int(seed)
    exp["name"] = f"{experiment['name']}-{trial.name}"
    exp["title"] = f"{experiment.get('title') or experiment['name']}: {trial.name}"
    return exp


def _without_sweep(experiment: Mapping) -> dict:
    """The base of every trial: the experiment without its sweep (so a trial is a single run, and
    resolving it does not expand the sweep again)."""
    base = dict(experiment)
    base["sweep"] = None
    return base


def _expand(cfg: Mapping, base: dict) -> list[Trial]:
    keys = list(cfg["parameters"])
    if cfg["method"] == "grid":
        lists = [list(enumerate(space_points(cfg["parameters"][k]))) for k in keys]
        points = [{k: (v, i) for k, (i, v) in zip(keys, combo)} for combo in itertools.product(*lists)]
    else:
        rng = np.random.default_rng(cfg["sampler_seed"])
        lists = {k: space_points(cfg["parameters"][k]) for k in keys}
        points = [{k: _draw(cfg["parameters"][k], lists[k], rng) for k in keys} for _ in range(cfg["trials"])]
    names = _trial_names(points, numbered=cfg["method"] == "random")
    trials = []
    for index, (point, name) in enumerate(zip(points, names)):
        params = {k: v for k, (v, _) in point.items()}
        try:
            overrides = _overrides(base, params)
        except ExperimentError as exc:
            raise _trial_error(index, name, params, exc) from None
        trials.append(Trial(index, name, params, overrides))
    return trials


def _trial_error(index: int, name: str, params: Mapping, exc: ExperimentError) -> ExperimentError:
    """The message of a trial that does not resolve: which trial, its values, what is wrong."""
    values = ", ".join(f"{k}={v!r:.40}" for k, v in params.items())
    return ExperimentError(f"sweep trial {index} ({name}: {values}): {exc}")


# ----------------------------------------------------------------------------- overrides


def _set(target: dict, path: tuple, value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = copy.deepcopy(value)


def _overrides(base: dict, params: Mapping[str, Any]) -> dict:
    """The override that sets every dotted key of one trial.

    Keys under one section nest into one object, so apply_overrides sees
    ``{"optimizer": {"name": ..., "learning_rate": ...}}`` at once.  A key
    on one layer (``model.layers[1].units``) cannot be written as a partial
    override (an object under ``model.layers`` goes to every layer), so the
    trial carries the whole layer list: the base's layers with the trial's
    keys merged into the chosen ones by the layer rule of apply_overrides
    (a new activation resets the initializer to Table 11-1's match...).
    """
    plain: dict = {}
    per_layer: dict[int, dict] = {}
    for key, value in params.items():
        path = parse_key(key)
        if len(path) > 2 and path[:2] == ("model", "layers") and isinstance(path[2], int):
            if len(path) == 3:
                if not isinstance(value, dict):
                    raise ExperimentError(f"{key} takes an object of layer keys, got {value!r:.60}")
                per_layer.setdefault(path[2], {}).update(copy.deepcopy(value))
            else:
                _set(per_layer.setdefault(path[2], {}), path[3:], value)
        else:
            _set(plain, path, value)
    if not per_layer:
        return plain
    first = apply_overrides(base, plain)
    layers = first["model"]["layers"]
    for index, over in sorted(per_layer.items()):
        if index >= len(layers):
            raise ExperimentError(f"model.layers[{index}] does not exist: the model has {len(layers)} hidden "
                                  f"layers (model.layers[0] to [{len(layers) - 1}])" if layers else
                                  f"model.layers[{index}] does not exist: the model has no hidden layers")
        layers[index] = apply_overrides(first, {"model": {"layers": over}})["model"]["layers"][index]
    plain.setdefault("model", {})["layers"] = layers
    return plain


# ----------------------------------------------------------------------------- names


def _format_number(value: float | int, digits: int) -> str:
    """0.001 -> "1e-03", 0.0316 -> "0.0316", 1.0 -> "1", 128 -> "128" (folder-safe: no "+")."""
    if isinstance(value, int):
        return str(value)
    if value == 0:
        return "0"
    if 1e-2 <= abs(value) < 1e5:
        return f"{value:.{digits}g}".replace("e+", "e")
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{exponent}".replace("e+", "e")


def _label(key: str) -> str:
    path = parse_key(key)
    last = path[-1]
    if isinstance(last, int):         # a whole layer: model.layers[1]
        return f"l{last}"
    short = ABBREVIATIONS.get(last, last)
    if len(path) > 2 and isinstance(path[2], int):
        short = f"l{path[2]}{short}"
    return "" if last == "name" else short


def _value_text(key: str, value: Any, position: int | None, digits: int) -> str:
    label = _label(key)
    if isinstance(value, bool) or value is None:
        text = f"{label}_{str(value).lower() if value is not None else 'null'}"
    elif isinstance(value, (int, float)):
        text = label + _format_number(value, digits)
    elif isinstance(value, str):
        text = f"{label}_{value}" if label else value
    else:                              # a list or an object: its place in the values list
        text = f"{label or key.split('.')[-1]}_v{position}"
    text = _UNSAFE.sub("-", text).strip("-_")
    return text or f"v{position}"


def _trial_names(points: list[dict], numbered: bool) -> list[str]:
    """Short unique names: "adam-lr1e-03"; more digits if two trials would share a name; random draws
    (and anything still ambiguous or too long) get their trial number in front: "t007-adam-lr3.2e-04"."""
    width = len(str(max(len(points) - 1, 0)))
    for digits in (3, 4, 5, 6):
        names = ["-".join(_value_text(k, v, pos, digits) for k, (v, pos) in p.items()) for p in points]
        if numbered or (len(set(names)) == len(names) and all(len(n) <= MAX_NAME for n in names)):
            break
    if numbered or len(set(names)) != len(names) or any(len(n) > MAX_NAME for n in names):
        names = [f"t{i:0{width}d}-{n}"[:MAX_NAME].rstrip("-_.") for i, n in enumerate(names)]
    return names
