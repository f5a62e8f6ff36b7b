"""Multi-stage workflows: the optional ``stages`` section of an experiment.

Transfer learning, unsupervised pretraining and pretraining on an auxiliary
task all train one network, then build another on top of its layers.  A
``stages`` section describes such a workflow in the experiment file, so one
preset runs it end to end, in the window or with ``python main.py run``.

The section
-----------
::

    "stages": {
      "seeds": 3,                      # or a list [42, 43, 44]; default: [experiment seed]
      "list": [                        # the stages, run in this order for every seed
        {"name": "a", "title": "Model A on 8 classes",
         "data": {"classes": [0, 1, 2, 3, 4, 7, 8, 9]},
         "training": {"epochs": 5}},
        {"name": "b_scratch", "data": {"classes": [5, 6], "per_class": 100},
         "model": {"layers": [...], "output": {"activation": "logistic"}}},
        {"name": "b_on_a", "data": {"classes": [5, 6], "per_class": 100},
         "reuse": {"from": "a", "layers": "all_but_output", "freeze": true},
         "model": {"output": {"activation": "logistic"}},
         "phases": [
           {"name": "frozen", "epochs": 4, "cache": true, "measure_caching": true},
           {"name": "unfrozen", "epochs": 16, "freeze": "none", "learning_rate_factor": 0.1}]}
      ],
      "report": {"metric": "test_accuracy", "baseline": "b_scratch", "compare": ["b_on_a"],
                 "target": 0.95}
    }

A bare list is accepted as ``{"list": [...]}``.

Every stage inherits the experiment's top-level sections and overrides what
it names:

* ``data`` is merged key by key over the top-level ``data`` (give ``name``
  to switch to another data set: the section is then replaced);
* ``optimizer`` and ``training`` are merged the same way (an optimizer with
  another ``name`` replaces it); ``schedule`` and ``loss`` replace;
* ``model`` replaces the top-level model.  With ``reuse`` it describes only
  what goes *on top of* the reused layers: ``layers`` (new hidden layers,
  default none) and ``output`` (the new output layer).

``reuse`` = ``{"from": <earlier stage>, "layers": k | "all_but_output" |
"all_but_top_N", "freeze": true, "standardize_like_source": true}``: the new
network starts with copies (never shared references) of the first k hidden
layers of the earlier stage's trained network -- architecture and weights,
BN moving statistics included.  ``freeze`` is the default for the first
phase.  ``standardize_like_source`` scales this stage's inputs with the
source stage's training statistics instead of its own: reused weights were
learned on inputs scaled that way (a 200-image set would otherwise get very
different pixel statistics from the 48,000 images model A saw).

``phases`` (default: one phase called "train") split a stage's training of
one network into parts with their own settings:

* ``name``; ``freeze``: "reused" (the reused layers), "none", "all_hidden",
  an int n (the bottom n layers) or a list of layer indices -- the layers
  that are frozen during this phase (default: the first phase freezes the
  reused layers when ``reuse.freeze``, later phases keep the previous
  phase's choice);
* ``epochs``, ``learning_rate`` or ``learning_rate_factor`` (times the
  stage's learning rate; the book divides it by 10 when unfreezing),
  ``optimizer``/``training`` (merged), ``schedule`` (replaces);
* ``cache``: train this phase on the cached outputs of the frozen bottom
  layers (:mod:`engine.transfer`); refused with a message naming the layer
  when dropout, alpha dropout or RReLU sit below the cut;
* ``measure_caching``: before the phase, train it both ways from the same
  weights and record the times and the speedup in the stage's summary.

Every phase starts a fresh optimizer (as Keras does when a model is
compiled again after freezing or unfreezing), continues the same network,
and uses the seed ``seed + 7919 * phase_index`` for its batch order and
dropout masks.

``report`` picks the headline ``metric`` (test_accuracy, best_val_accuracy,
final_val_accuracy, test_loss or final_val_loss), the ``baseline`` stage and
the stages to ``compare`` with it (default: every other stage with the same
data), and an optional validation-accuracy ``target`` for "steps to reach".
For every compared stage the report gives, over the seeds, the paired gain
(stage minus baseline, seed by seed) with its mean, standard deviation,
minimum and maximum, how many seeds it won, and a verdict; it says "not
distinguishable at N seeds" when the mean gain is not larger than the
seed-to-seed spread (the larger of the two stages' standard deviations) --
the one rule of every comparison in Descent, :func:`engine.compare.distinguishable`.
The verdict uses the final weights' metric, never the best epoch picked
after the fact.

Events and the time axis
------------------------
:func:`run_stages` yields, for every seed and every stage in order:
``StageStarted``; then, per phase, the phase's ordinary run events
(``RunStarted`` ... ``RunFinished`` of :mod:`engine.events`); then
``StageFinished`` with the stage's metrics; at the very end one
``StagesFinished`` with the report.

* ``run_id`` is unique per (seed, stage): one network, one ``run_id``.
* ``RunStarted.stage`` is ``"<stage>"`` for a single-phase stage and
  ``"<stage>/<phase>"`` otherwise.  A ``RunStarted`` whose ``run_id`` was
  seen before starts the next phase of the same network.
* Step numbers continue across the phases of one stage: the events of the
  second phase are rewritten so that ``step`` (StepMetrics, EpochEnd,
  DecisionSurface, RunFinished), ``epoch`` and ``elapsed`` count from the
  start of the stage, and ``RunStarted.total_steps`` is the step at which
  the phase will end.  A phase boundary is a vertical line on a step axis
  at the previous phase's ``RunFinished.step`` (also recorded as the
  phase's ``first_step`` in the stage summary).  ``RunFinished.summary``
  (steps, train_seconds) stays the phase's own count.
* In a cached phase the frozen layers are not run, so their per-layer
  diagnostics (gradient norm, activation statistics) are NaN; the layer
  list, parameter count and final weights are the whole network's.

Headless output (``python main.py run PRESET``) -- :class:`StagesWriter`::

    runs/<stamp>-<name>/
      experiment.json             the resolved staged experiment
      summary.json                every stage's metrics per seed, the report
      stages.csv                  one row per seed x stage
      seed-<s>/<NN>-<stage>/      a normal run folder (single-phase stage)
      seed-<s>/<NN>-<stage>/<MM>-<phase>/   one run folder per phase

The last phase's folder holds the stage's final ``weights.npz``.

Everything here is validated when the experiment is loaded; errors name the
key (``stages.list[2].phases[1].freeze``) and what is allowed.
"""
from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import DescentError, ExperimentError, nearest
from . import transfer as T

STAGE_KEYS = ("name", "title", "data", "model", "reuse", "loss", "optimizer", "schedule", "training", "phases")
REUSE_KEYS = ("from", "layers", "freeze", "standardize_like_source")
PHASE_KEYS = ("name", "freeze", "epochs", "learning_rate", "learning_rate_factor", "optimizer", "schedule",
              "training", "cache", "measure_caching")
SECTION_KEYS = ("seeds", "list", "report")
REPORT_KEYS = ("metric", "baseline", "compare", "target")
METRICS = {"test_accuracy": True, "best_val_accuracy": True, "final_val_accuracy": True,
           "test_loss": False, "final_val_loss": False}
MAX_STAGES = 50
MAX_PHASES = 20
MAX_SEEDS = 100
PHASE_SEED_STRIDE = 7919
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,39}$")


# =========================================================================== records

@dataclass(frozen=True)
class StageStarted:
    run_id: int
    seed: int
    stage: str
    index: int               # position in the stage list
    title: str
    phases: tuple            # phase names
    reuse: dict | None       # {"from", "k", "layers"} or None


@dataclass(frozen=True)
class StageFinished:
    run_id: int
    seed: int
    stage: str
    index: int
    summary: dict            # metrics of the stage (see stage_summary keys)


@dataclass(frozen=True)
class StagesFinished:
    report: dict             # {"seeds", "stages": {name: per-seed and aggregated metrics}, "comparisons"}


# ====================================================================== resolving

def _obj(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise ExperimentError(f"{where} must be an object ({{...}}), got {type(value).__name__}")
    return value


def _unknown(values: dict, allowed, where: str) -> None:
    for key in values:
        if key not in allowed:
            raise ExperimentError(f"unknown key {where}.{key}{nearest(key, allowed)}; allowed: {', '.join(allowed)}")


def _merge(base: dict, over: dict | None, by_name: bool = True) -> dict:
    """``over`` merged key by key over ``base``; a different ``name`` replaces."""
    if over is None:
        return copy.deepcopy(base)
    if by_name and "name" in over and over["name"] != base.get("name"):
        return copy.deepcopy(over)
    out = copy.deepcopy(base)
    out.update(copy.deepcopy(over))
    return out


def _seeds(value: Any, default: int) -> list:
    where = "stages.seeds"
    if value is None:
        return [default]
    if isinstance(value, bool):
        raise ExperimentError(f"{where} must be a count (1..{MAX_SEEDS}) or a list of seeds, got {value!r}")
    if isinstance(value, int):
        if not 1 <= value <= MAX_SEEDS:
            raise ExperimentError(f"{where} must be from 1 to {MAX_SEEDS} seeds, got {value}")
        return [(default + i) % 2**32 for i in range(value)]
    if not isinstance(value, list) or not value or len(value) > MAX_SEEDS:
        raise ExperimentError(f"{where} must be a count or a non-empty list of at most {MAX_SEEDS} seeds, "
                              f"got {value!r:.80}")
    for i, s in enumerate(value):
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**32:
            raise ExperimentError(f"{where}[{i}] must be an integer from 0 to 2^32 - 1, got {s!r}")
    if len(set(value)) != len(value):
        raise ExperimentError(f"{where} repeats a seed: {value}")
    return list(value)


def _freeze_list(spec: Any, n_hidden: int, k_reused: int, where: str) -> list:
    """A phase's ``freeze`` value -> sorted list of frozen layer indices."""
    if spec == "reused":
        return list(range(k_reused))
    if spec == "none":
        return []
    if spec == "all_hidden":
        return list(range(n_hidden))
    if isinstance(spec, int) and not isinstance(spec, bool):
        if not 0 <= spec <= n_hidden:
            raise ExperimentError(f"{where} must be from 0 to {n_hidden} (the network has {n_hidden} hidden "
                                  f"layers), got {spec}")
        return list(range(spec))
    if isinstance(spec, list):
        for i, v in enumerate(spec):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= n_hidden:
                raise ExperimentError(f"{where}[{i}] must be a layer index from 0 to {n_hidden} "
                                      f"(the output layer is {n_hidden}), got {v!r}")
        return sorted(set(spec))
    raise ExperimentError(f"{where} must be 'reused', 'none', 'all_hidden', a number of bottom layers or a "
                          f"list of layer indices, got {spec!r}")


def _single(top: dict, stage: dict, model: dict, where: str) -> dict:
    """Resolve one stage (or phase) as an ordinary experiment; errors get a prefix."""
    from .experiment import resolve_experiment

    exp = {"format_version": top["format_version"], "name": stage["name"], "seed": top["seed"],
           "data": stage["data"], "model": model, "loss": stage["loss"], "optimizer": stage["optimizer"],
           "schedule": stage["schedule"], "training": stage["training"]}
    try:
        return resolve_experiment(exp)
    except ExperimentError as exc:
        raise ExperimentError(f"{where}: {exc}") from None


def _resolve_stage(raw: Any, i: int, top: dict, done: dict) -> dict:
    where = f"stages.list[{i}]"
    raw = _obj(raw, where)
    _unknown(raw, STAGE_KEYS, where)
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ExperimentError(f"{where}.name must be 1-40 letters, digits, '_', '-' or '.', got {name!r}")
    if name in done:
        raise ExperimentError(f"{where}.name {name!r} is used by an earlier stage; names must be unique")
    where = f"stages.list[{i}] ({name})"
    title = raw.get("title", "")
    if not isinstance(title, str) or len(title) > 2000:
        raise ExperimentError(f"{where}.title must be a string of at most 2,000 characters")
    stage = {"name": name, "title": title}
    stage["data"] = _merge(top["data"], _obj(raw["data"], f"{where}.data") if "data" in raw else None)
    stage["optimizer"] = _merge(top["optimizer"], _obj(raw["optimizer"], f"{where}.optimizer")
                                if "optimizer" in raw else None)
    stage["training"] = _merge(top["training"], _obj(raw["training"], f"{where}.training")
                               if "training" in raw else None, by_name=False)
    stage["schedule"] = copy.deepcopy(raw.get("schedule", top["schedule"]))
    stage["loss"] = raw.get("loss", top["loss"])

    reuse = None
    k = 0
    if raw.get("reuse") is not None:
        r = _obj(raw["reuse"], f"{where}.reuse")
        _unknown(r, REUSE_KEYS, f"{where}.reuse")
        src = r.get("from")
        if src not in done:
            raise ExperimentError(f"{where}.reuse.from must name an earlier stage "
                                  f"({', '.join(done) or 'there is none'}), got {src!r}{nearest(src, done)}")
        src_layers = done[src]["resolved"]["model"]["layers"]
        k = T.resolve_layer_count(r.get("layers", T.ALL_BUT_OUTPUT), len(src_layers), f"{where}.reuse.layers")
        for key in ("freeze", "standardize_like_source"):
            if not isinstance(r.get(key, True), bool):
                raise ExperimentError(f"{where}.reuse.{key} must be true or false, got {r[key]!r}")
        reuse = {"from": src, "layers": r.get("layers", T.ALL_BUT_OUTPUT), "freeze": r.get("freeze", True),
                 "standardize_like_source": r.get("standardize_like_source", True)}
        own = _obj(raw.get("model", {}), f"{where}.model")
        _unknown(own, ("layers", "output"), f"{where}.model")
        if not isinstance(own.get("layers", []), list):
            raise ExperimentError(f"{where}.model.layers must be a list of the new layers on top of the reused ones")
        model = T.reused_model_config(src_layers, k, own.get("layers", []), own.get("output", {}), freeze=False)
        src_data = done[src]["resolved"]["data"]
    else:
        model = copy.deepcopy(_obj(raw.get("model", top["model"]), f"{where}.model"))
        src_data = None
    resolved = _single(top, stage, model, where)
    layers = resolved["model"]["layers"]
    if reuse is not None:
        T.check_compatible(done[reuse["from"]]["resolved"]["model"]["layers"], layers, k, f"{where}.reuse")
        stage["model"] = {"layers": layers[k:], "output": resolved["model"]["output"]}
    else:
        stage["model"] = resolved["model"]
    for key in ("data", "loss", "optimizer", "schedule", "training"):
        stage[key] = resolved[key]
    stage["reuse"] = reuse

    # phases
    raw_phases = raw.get("phases")
    if raw_phases is None:
        raw_phases = [{"name": "train"}]
    if not isinstance(raw_phases, list) or not 1 <= len(raw_phases) <= MAX_PHASES:
        raise ExperimentError(f"{where}.phases must be a list of 1 to {MAX_PHASES} phase objects")
    phases, previous_freeze, names = [], None, set()
    n_hidden = len(layers)
    for j, rp in enumerate(raw_phases):
        pw = f"{where}.phases[{j}]"
        rp = _obj(rp, pw)
        _unknown(rp, PHASE_KEYS, pw)
        pname = rp.get("name", f"phase{j + 1}")
        if not isinstance(pname, str) or not _NAME.match(pname) or pname in names:
            raise ExperimentError(f"{pw}.name must be a unique name of 1-40 letters, digits, '_', '-' or '.', "
                                  f"got {pname!r}")
        names.add(pname)
        if "freeze" in rp:
            frozen = _freeze_list(rp["freeze"], n_hidden, k, f"{pw}.freeze")
        elif previous_freeze is not None:
            frozen = previous_freeze
        else:
            frozen = list(range(k)) if reuse is not None and reuse["freeze"] else []
        frozen = frozen + [layer for layer in range(n_hidden) if not layers[layer]["trainable"]
                           and layer not in frozen and reuse is None]
        frozen = sorted(set(frozen))
        previous_freeze = frozen
        if len(frozen) == n_hidden + 1:
            raise ExperimentError(f"{pw}.freeze freezes every layer: nothing would train")
        optimizer = _merge(stage["optimizer"], _obj(rp["optimizer"], f"{pw}.optimizer") if "optimizer" in rp
                           else None)
        if "learning_rate" in rp and "learning_rate_factor" in rp:
            raise ExperimentError(f"{pw}: give learning_rate or learning_rate_factor, not both")
        if "learning_rate" in rp:
            optimizer["learning_rate"] = rp["learning_rate"]
        if "learning_rate_factor" in rp:
            f = rp["learning_rate_factor"]
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not (0 < f <= 1e6) or not math.isfinite(f):
                raise ExperimentError(f"{pw}.learning_rate_factor must be a number > 0 (0.1 divides the stage's "
                                      f"learning rate by 10), got {f!r}")
            optimizer["learning_rate"] = stage["optimizer"]["learning_rate"] * f
        training = _merge(stage["training"], _obj(rp["training"], f"{pw}.training") if "training" in rp
                          else None, by_name=False)
        if "epochs" in rp:
            training["epochs"] = rp["epochs"]
        schedule = copy.deepcopy(rp.get("schedule", stage["schedule"]))
        for key in ("cache", "measure_caching"):
            if not isinstance(rp.get(key, False), bool):
                raise ExperimentError(f"{pw}.{key} must be true or false, got {rp[key]!r}")
        phase = {"name": pname, "freeze": frozen, "optimizer": optimizer, "schedule": schedule,
                 "training": training, "cache": rp.get("cache", False),
                 "measure_caching": rp.get("measure_caching", False)}
        pexp = _single(top, dict(stage, optimizer=optimizer, schedule=schedule, training=training),
                       _phase_model(layers, resolved["model"]["output"], frozen), pw)
        for key in ("optimizer", "schedule", "training"):
            phase[key] = pexp[key]
        if phase["cache"] or phase["measure_caching"]:
            _check_cache_static(layers, frozen, pw)
        phases.append(phase)
    stage["phases"] = phases
    done[name] = {"resolved": resolved, "k": k}
    return stage


def _phase_model(layers: list, output: dict, frozen: list) -> dict:
    return {"layers": [dict(copy.deepcopy(c), trainable=i not in frozen) for i, c in enumerate(layers)],
            "output": dict(copy.deepcopy(output), trainable=len(layers) not in frozen)}


def _check_cache_static(layers: list, frozen: list, where: str) -> None:
    cut = 0
    while cut in frozen and cut < len(layers):
        cut += 1
    if cut == 0:
        raise ExperimentError(f"{where}.cache: no frozen layer at the bottom of the network (layer 0 is "
                              f"trainable), so there is nothing to cache; freeze the reused layers or set "
                              f"cache to false")
    problems = []
    for i in range(cut):
        c = layers[i]
        if c.get("dropout", 0.0) > 0:
            problems.append(f"layer {i} has {'alpha ' if c.get('alpha_dropout') else ''}dropout "
                            f"{c['dropout']:g} (a new random mask every step)")
        if c["activation"] == "rrelu":
            problems.append(f"layer {i} uses RReLU (random slopes every step)")
    if problems:
        raise ExperimentError(f"{where}.cache: the frozen layers' outputs change from step to step, so caching "
                              f"them would change what is learned: " + "; ".join(problems)
                              + ". Set cache and measure_caching to false, or remove that randomness.")


def _resolve_report(raw: Any, stages: list) -> dict:
    names = [s["name"] for s in stages]
    raw = {} if raw is None else _obj(raw, "stages.report")
    _unknown(raw, REPORT_KEYS, "stages.report")
    metric = raw.get("metric", "test_accuracy")
    if metric not in METRICS:
        raise ExperimentError(f"stages.report.metric must be one of {', '.join(METRICS)}, got {metric!r}"
                              f"{nearest(metric, METRICS)}")
    baseline = raw.get("baseline")
    if baseline is not None and baseline not in names:
        raise ExperimentError(f"stages.report.baseline must name a stage ({', '.join(names)}), got {baseline!r}"
                              f"{nearest(baseline, names)}")
    compare = raw.get("compare")
    if compare is None:
        compare = [] if baseline is None else [
            s["name"] for s in stages if s["name"] != baseline
            and s["data"] == next(t for t in stages if t["name"] == baseline)["data"]]
    if not isinstance(compare, list):
        raise ExperimentError("stages.report.compare must be a list of stage names")
    for j, c in enumerate(compare):
        if c not in names:
            raise ExperimentError(f"stages.report.compare[{j}] must name a stage ({', '.join(names)}), got {c!r}"
                                  f"{nearest(c, names)}")
    if compare and baseline is None:
        raise ExperimentError("stages.report.compare needs a baseline stage to compare with")
    target = raw.get("target")
    if target is not None and (isinstance(target, bool) or not isinstance(target, (int, float))
                               or not 0 < target <= 1):
        raise ExperimentError(f"stages.report.target must be a validation accuracy in (0, 1], got {target!r}")
    return {"metric": metric, "baseline": baseline, "compare": list(compare), "target": target}


def resolve_stages(section: Any, experiment: dict) -> dict:
    """Validate the ``stages`` section against the resolved top-level
    experiment; returns it with every default filled in (idempotent: the
    result resolves to itself)."""
    if isinstance(section, list):
        section = {"list": section}
    section = _obj(section, "stages")
    _unknown(section, SECTION_KEYS, "stages")
    if experiment.get("compare") is not None:
        raise ExperimentError("an experiment has either a compare section or a stages section, not both; "
                              "stages has its own seeds and report")
    raw_list = section.get("list")
    if not isinstance(raw_list, list) or not 1 <= len(raw_list) <= MAX_STAGES:
        raise ExperimentError(f"stages.list must be a list of 1 to {MAX_STAGES} stage objects")
    done: dict = {}
    stages = [_resolve_stage(raw, i, experiment, done) for i, raw in enumerate(raw_list)]
    return {"seeds": _seeds(section.get("seeds"), experiment["seed"]), "list": stages,
            "report": _resolve_report(section.get("report"), stages)}


# ======================================================================= running

def stage_model(stage: dict, staged: dict) -> tuple[dict, int]:
    """(full model section of a stage, number of reused layers k)."""
    if stage["reuse"] is None:
        return copy.deepcopy(stage["model"]), 0
    by_name = {s["name"]: s for s in staged["list"]}
    src_model, _ = stage_model(by_name[stage["reuse"]["from"]], staged)
    k = T.resolve_layer_count(stage["reuse"]["layers"], len(src_model["layers"]))
    return T.reused_model_config(src_model["layers"], k, stage["model"]["layers"], stage["model"]["output"],
                                 freeze=False), k


def phase_experiment(experiment: dict, stage: dict, phase_index: int, seed: int) -> dict:
    """The ordinary (single-run) resolved experiment of one phase."""
    from .experiment import resolve_experiment

    staged = experiment["stages"]
    model, _ = stage_model(stage, staged)
    phase = stage["phases"][phase_index]
    exp = {"format_version": experiment["format_version"], "name": f"{experiment['name']}/{stage['name']}",
           "title": stage["title"] or experiment["title"], "section": experiment["section"],
           "seed": (seed + PHASE_SEED_STRIDE * phase_index) % 2**32, "data": stage["data"],
           "model": _phase_model(model["layers"], model["output"], phase["freeze"]), "loss": stage["loss"],
           "optimizer": phase["optimizer"], "schedule": phase["schedule"], "training": phase["training"]}
    return resolve_experiment(exp)


def _restandardize(dataset, source):
    """``dataset`` with its inputs scaled by ``source``'s training statistics."""
    if dataset.n_features != source.n_features:
        raise ExperimentError(f"reuse: the source stage's data have {source.n_features} features, this stage's "
                              f"{dataset.n_features}; set reuse.standardize_like_source to false or use data "
                              f"of the same shape")
    parts = {}
    for part in ("train", "val", "test"):
        x = getattr(dataset, "x_" + part)
        new = source.standardize(dataset.to_original(x)) if len(x) else x
        new.setflags(write=False)
        parts["x_" + part] = new
        if dataset.task == "reconstruction":
            parts["y_" + part] = new
    return dataclasses.replace(dataset, mean=source.mean, std=source.std, **parts)


class _Shift:
    """Rewrites one phase's events onto the stage's time axis."""

    def __init__(self, step: int, epoch: int, elapsed: float, pad: int = 0, net=None):
        self.step, self.epoch, self.elapsed, self.pad, self.net = step, epoch, elapsed, pad, net

    def _padded(self, arr):
        if self.pad <= 0:
            return arr
        from .events import frozen_array
        a = np.asarray(arr)
        fill = np.full((self.pad,) + a.shape[1:], np.nan)
        return frozen_array(np.concatenate([fill, a]), a.dtype if a.dtype.kind == "f" else np.float64)

    def __call__(self, ev):
        from .events import (ConfusionReport, DecisionSurface, EpochEnd, RunFinished, RunStarted, StepMetrics,
                             frozen_array)
        r = dataclasses.replace
        if isinstance(ev, RunStarted):
            ev = r(ev, total_steps=ev.total_steps + self.step)
            if self.net is not None:
                ev = r(ev, layers=self.net.layer_infos(), n_params=self.net.n_params)
            return ev
        if isinstance(ev, StepMetrics):
            ev = r(ev, step=ev.step + self.step, epoch=ev.epoch + self.epoch, elapsed=ev.elapsed + self.elapsed)
            if self.pad:
                ev = r(ev, **{f: self._padded(getattr(ev, f)) for f in
                              ("grad_norm", "bias_grad_norm", "update_ratio", "dead_fraction", "dead_count",
                               "act_mean", "act_std", "saturated", "histograms")})
            return ev
        if isinstance(ev, EpochEnd):
            return r(ev, epoch=ev.epoch + self.epoch, step=ev.step + self.step)
        if isinstance(ev, DecisionSurface):
            return r(ev, step=ev.step + self.step)
        if isinstance(ev, ConfusionReport):
            return r(ev, epoch=ev.epoch + self.epoch)
        if isinstance(ev, RunFinished):
            ev = r(ev, step=ev.step + self.step, epoch=ev.epoch + self.epoch)
            if self.net is not None:
                ev = r(ev, weights={k: frozen_array(v, v.dtype) for k, v in self.net.state_dict().items()},
                       summary=dict(ev.summary, n_params=self.net.n_params))
            return ev
        return ev


def run_stages(experiment: dict, control=None, max_steps: int | None = None,
               seeds: list | None = None) -> Iterator:
    """Run a staged experiment end to end; yields the records described in
    the module docstring.  ``max_steps`` caps every phase (smoke tests);
    ``seeds`` overrides ``stages.seeds``."""
    from .control import RunControl
    from .datasets import load_dataset
    from .events import EpochEnd, RunFinished
    from .model import Network
    from .training import Trainer

    staged = experiment.get("stages")
    if not staged:
        raise ExperimentError("this experiment has no stages section")
    control = control or RunControl()
    seeds = list(seeds) if seeds is not None else staged["seeds"]
    stages = staged["list"]
    target = staged["report"]["target"]
    results: dict = {s["name"]: [] for s in stages}
    t_start = time.perf_counter()
    for si, seed in enumerate(seeds):
        nets: dict = {}
        datasets: dict = {}
        cache: dict = {}
        for idx, stage in enumerate(stages):
            if control.stopped:
                break
            run_id = si * len(stages) + idx
            model, k = stage_model(stage, staged)
            reuse = stage["reuse"]
            yield StageStarted(run_id, seed, stage["name"], idx, stage["title"],
                               tuple(p["name"] for p in stage["phases"]),
                               None if reuse is None else {"from": reuse["from"], "k": k, "layers": reuse["layers"]})
            key = (json.dumps(stage["data"], sort_keys=True), seed)
            if key not in cache:
                cache[key] = load_dataset(stage["data"], seed)
            data = cache[key]
            if reuse is not None and reuse["standardize_like_source"]:
                data = _restandardize(data, datasets[reuse["from"]])
            datasets[stage["name"]] = data
            exp0 = phase_experiment(experiment, stage, 0, seed)
            n_targets = data.y_train.shape[1] if data.y_train.ndim == 2 else 1
            if reuse is not None:
                net = T.build_reused_network(nets[reuse["from"]].state_dict(), exp0, data.n_features, data.task,
                                             data.n_classes, n_targets, k=k, seed=seed, freeze=False,
                                             source=f"stage {reuse['from']!r}")
            else:
                net = Network(exp0, data.n_features, data.task, data.n_classes, n_targets)
                net.initialize(seed)
            offset_step, offset_epoch, offset_elapsed = 0, 0, 0.0
            summary = {"seed": seed, "stage": stage["name"], "phases": [], "val_curve": [],
                       "steps_to_target": None, "best_val_accuracy": math.nan}
            status = "finished"
            t_stage = time.perf_counter()
            for pi, phase in enumerate(stage["phases"]):
                if control.stopped or status == "diverged":
                    break
                pexp = exp0 if pi == 0 else phase_experiment(experiment, stage, pi, seed)
                net.experiment = pexp
                for layer in range(net.n_layers):
                    net.set_trainable(layer, layer not in phase["freeze"])
                label = stage["name"] if len(stage["phases"]) == 1 else f"{stage['name']}/{phase['name']}"
                psum = {"phase": phase["name"], "frozen": list(phase["freeze"]), "cached": phase["cache"],
                        "learning_rate": phase["optimizer"]["learning_rate"], "first_step": offset_step}
                if phase["measure_caching"]:
                    psum["caching"] = T.measure_caching_speedup(net, pexp, data, max_steps=max_steps)
                if phase["cache"]:
                    cut, upper, up_exp, feats, secs = T.cached_phase(net, pexp, data)
                    psum["cache_seconds"] = secs
                    psum["cut"] = cut
                    trainer = Trainer(up_exp, dataset=feats, run_id=run_id, network=upper, max_steps=max_steps)
                    shift = _Shift(offset_step, offset_epoch, offset_elapsed, pad=cut, net=net)
                    trainer.experiment = up_exp
                else:
                    cut, upper = 0, None
                    trainer = Trainer(pexp, dataset=data, run_id=run_id, network=net, max_steps=max_steps)
                    shift = _Shift(offset_step, offset_epoch, offset_elapsed)
                for ev in trainer.run(control, stage=label):
                    if isinstance(ev, RunFinished) and upper is not None:
                        T.merge_upper(net, upper, cut)
                    if upper is not None and hasattr(ev, "experiment") and ev.experiment is up_exp:
                        ev = dataclasses.replace(ev, experiment=pexp)
                    ev = shift(ev)
                    if isinstance(ev, EpochEnd):
                        acc = ev.val_accuracy
                        summary["val_curve"].append([ev.step, acc])
                        if not math.isnan(acc):
                            if math.isnan(summary["best_val_accuracy"]) or acc > summary["best_val_accuracy"]:
                                summary["best_val_accuracy"] = acc
                            if target is not None and summary["steps_to_target"] is None and acc >= target:
                                summary["steps_to_target"] = ev.step
                    if isinstance(ev, RunFinished):
                        s = ev.summary
                        status = ev.status
                        psum.update({k2: s.get(k2) for k2 in ("status", "steps", "epochs", "final_val_accuracy",
                                                              "final_val_loss", "test_accuracy", "test_loss",
                                                              "train_seconds")})
                        offset_step, offset_epoch = ev.step, ev.epoch
                        offset_elapsed += s.get("train_seconds", 0.0) or 0.0
                        last = s
                    yield ev
                summary["phases"].append(psum)
            nets[stage["name"]] = net
            if summary["phases"] and "steps" in summary["phases"][-1]:
                for key2 in ("final_val_accuracy", "final_val_loss", "test_accuracy", "test_loss"):
                    summary[key2] = last.get(key2)
            summary.update({"status": status, "steps": offset_step, "epochs": offset_epoch,
                            "train_seconds": offset_elapsed, "wall_seconds": time.perf_counter() - t_stage,
                            "reused_layers": k, "reused_from": None if reuse is None else reuse["from"]})
            caching = [p["caching"] for p in summary["phases"] if "caching" in p]
            if caching:
                summary["caching"] = caching[0]
            results[stage["name"]].append(summary)
            yield StageFinished(run_id, seed, stage["name"], idx, summary)
        if control.stopped:
            break
    report = build_report(staged, results)
    report["wall_seconds"] = time.perf_counter() - t_start
    yield StagesFinished(report)


# ====================================================================== reporting

try:  # one statistics rule for every report: the comparisons module's
    from .compare import distinguishable, spread
except ImportError:  # pragma: no cover - engine.compare not present
    def spread(values) -> dict:
        """mean, sample std (ddof=1), min, max and n of the finite values."""
        v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
        if v.size == 0:
            return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan, "n": 0}
        return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else math.nan,
                "min": float(v.min()), "max": float(v.max()), "n": int(v.size)}

    def distinguishable(a, b) -> dict:
        seeds = [k for k in a if k in b and a[k] is not None and b[k] is not None
                 and math.isfinite(a[k]) and math.isfinite(b[k])]
        av = np.array([a[k] for k in seeds], dtype=float)
        bv = np.array([b[k] for k in seeds], dtype=float)
        n = len(seeds)
        diffs = av - bv
        mean_diff = float(diffs.mean()) if n else math.nan
        spread_ = float(max(av.std(ddof=1), bv.std(ddof=1))) if n >= 2 else math.nan
        return {"n": n, "mean_diff": mean_diff, "spread": spread_,
                "distinguishable": bool(n >= 2 and abs(mean_diff) > spread_), "p_value": math.nan,
                "wins_a": int((diffs > 0).sum()), "wins_b": int((diffs < 0).sum())}


AGGREGATED = ("test_accuracy", "best_val_accuracy", "final_val_accuracy", "test_loss", "final_val_loss",
              "steps", "train_seconds", "wall_seconds", "steps_to_target")


def build_report(staged: dict, results: dict) -> dict:
    """Aggregate per-seed stage summaries into the report (see module doc)."""
    rep = staged["report"]
    metric = rep["metric"]
    higher = METRICS[metric]
    out = {"metric": metric, "baseline": rep["baseline"], "target": rep["target"], "stages": {},
           "comparisons": []}
    for name, runs in results.items():
        entry = {"seeds": [r["seed"] for r in runs], "runs": [{k: r.get(k) for k in
                 ("seed", "status", "val_curve", *AGGREGATED)} for r in runs]}
        for key in AGGREGATED:
            entry[key] = spread([r.get(key) for r in runs])
        reached = [r.get("steps_to_target") for r in runs]
        entry["reached_target"] = sum(x is not None for x in reached)
        caching = [r["caching"] for r in runs if "caching" in r]
        if caching:
            entry["caching"] = {k: spread([c[k] for c in caching]) for k in
                                ("speedup", "speedup_per_epoch", "uncached_seconds", "cached_seconds",
                                 "cache_seconds", "max_weight_difference")}
        out["stages"][name] = entry
    base = rep["baseline"]
    for name in rep["compare"]:
        if base is None or not results.get(base) or not results.get(name):
            continue
        base_by_seed = {r["seed"]: r.get(metric) for r in results[base]}
        by_seed = {r["seed"]: r.get(metric) for r in results[name]}
        pairs = [(seed, a, base_by_seed[seed]) for seed, a in by_seed.items() if seed in base_by_seed]
        sign = 1.0 if higher else -1.0
        gains = [sign * (a - b) for _, a, b in pairs
                 if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)]
        g = spread(gains)
        rule = distinguishable(by_seed, base_by_seed)
        wins = sum(x > 0 for x in gains)
        losses = sum(x < 0 for x in gains)
        comp = {"stage": name, "baseline": base, "metric": metric, "gain": g, "wins": wins, "losses": losses,
                "ties": len(gains) - wins - losses, "n": len(gains), "seed_spread": rule["spread"],
                "p_value": rule.get("p_value", math.nan), "distinguishable": rule["distinguishable"],
                "per_seed": [{"seed": s_, name: a, base: b} for s_, a, b in pairs]}
        comp["verdict"] = verdict(comp)
        out["comparisons"].append(comp)
    return out


def verdict(comp: dict) -> str:
    g, n = comp["gain"], comp["n"]
    if n == 0:
        return "no seed finished both stages"
    word = "higher" if METRICS[comp["metric"]] else "lower"
    scale = 100.0 if "accuracy" in comp["metric"] else 1.0
    unit = " points" if scale == 100.0 else ""
    std = f" ± {g['std'] * scale:.2f}" if math.isfinite(g["std"]) else ""
    text = (f"{comp['stage']} vs {comp['baseline']}: {comp['metric']} gain {g['mean'] * scale:+.2f}{std}{unit} "
            f"(mean ± std over {n} seed{'s' if n != 1 else ''}; range {g['min'] * scale:+.2f} to "
            f"{g['max'] * scale:+.2f}); {word} on {comp['wins']} of {n} seeds")
    if math.isfinite(comp.get("p_value", math.nan)):
        text += f"; paired t-test p = {comp['p_value']:.2f}"
    if not comp["distinguishable"]:
        text += f"; not distinguishable at {n} seed{'s' if n != 1 else ''} (the gain is within the " \
                f"seed-to-seed spread)"
    return text


def format_report(report: dict) -> str:
    """A plain-text table of the report (printed by the CLI)."""
    lines = []
    metric = report["metric"]
    pct = "accuracy" in metric
    lines.append(f"{'stage':24s} {metric + ' (mean ± std, min..max)':44s} {'steps':>8s} {'seconds':>8s}")
    for name, e in report["stages"].items():
        m = e[metric]
        if m["n"] == 0:
            cell = "-"
        elif pct:
            std = f" ± {m['std'] * 100:.2f}" if math.isfinite(m["std"]) else ""
            cell = f"{m['mean'] * 100:.2f}%{std}  ({m['min'] * 100:.2f}..{m['max'] * 100:.2f})"
        else:
            std = f" ± {m['std']:.4f}" if math.isfinite(m["std"]) else ""
            cell = f"{m['mean']:.4f}{std}  ({m['min']:.4f}..{m['max']:.4f})"
        lines.append(f"{name:24s} {cell:44s} {e['steps']['mean']:8.0f} {e['wall_seconds']['mean']:8.1f}")
        if report.get("target") is not None and e["steps_to_target"]["n"]:
            lines.append(f"{'':24s} reached val accuracy {report['target']:.3f} on {e['reached_target']} of "
                         f"{len(e['seeds'])} seeds, after {e['steps_to_target']['mean']:.0f} steps on average")
        if "caching" in e:
            c = e["caching"]
            lines.append(f"{'':24s} caching the frozen layers: phase {c['uncached_seconds']['mean']:.3f}s -> "
                         f"{c['cached_seconds']['mean']:.3f}s + {c['cache_seconds']['mean']:.3f}s to cache; "
                         f"speedup {c['speedup']['mean']:.1f}x overall, {c['speedup_per_epoch']['mean']:.1f}x per "
                         f"epoch; weights differ by at most {c['max_weight_difference']['max']:.1e}")
    for comp in report["comparisons"]:
        lines.append(comp["verdict"])
    return "\n".join(lines)


# ======================================================================== writing

def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)[:50] or "stage"


class StagesWriter:
    """Writes a staged run's folder (layout in the module docstring)."""

    def __init__(self, folder, experiment: dict, app_version: str = ""):
        from .experiment import dumps_experiment
        from .fileio import ensure_dir, write_json, write_text

        self.folder = ensure_dir(Path(folder))
        self.app_version = app_version
        self.experiment = experiment
        write_text(self.folder / "experiment.json", dumps_experiment(experiment))
        write_json(self.folder / "summary.json", {"status": "running", "pid": os.getpid(),
                                                  "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
        self._writer = None
        self._stage = None
        self._phase = 0
        self.rows: list = []

    def handle(self, event) -> None:
        from .events import RunFinished, RunStarted
        from .runstore import RunWriter

        if isinstance(event, StageStarted):
            self._stage = event
            self._phase = 0
        elif isinstance(event, RunStarted) and self._stage is not None:
            st = self._stage
            path = self.folder / f"seed-{st.seed}" / f"{st.index + 1:02d}-{_safe(st.stage)}"
            if len(st.phases) > 1:
                path = path / f"{self._phase + 1:02d}-{_safe(st.phases[self._phase])}"
            self._phase += 1
            self._writer = RunWriter(path, self.app_version)
            self._writer.handle(event)
        elif isinstance(event, StageFinished):
            self.rows.append(event.summary)
            self._write_csv()
        elif isinstance(event, StagesFinished):
            self._finish(event.report)
        elif self._writer is not None:
            self._writer.handle(event)
            if isinstance(event, RunFinished):
                self._writer = None

    def _write_csv(self) -> None:
        from .fileio import write_text
        keys = ["seed", "stage", "status", "reused_from", "reused_layers", "steps", "epochs", "test_accuracy",
                "test_loss", "final_val_accuracy", "best_val_accuracy", "steps_to_target", "train_seconds",
                "wall_seconds", "caching_speedup", "caching_speedup_per_epoch"]
        import io
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(keys)
        for r in self.rows:
            c = r.get("caching") or {}
            row = dict(r, caching_speedup=c.get("speedup"), caching_speedup_per_epoch=c.get("speedup_per_epoch"))
            w.writerow(["" if row.get(k) is None else row.get(k) for k in keys])
        write_text(self.folder / "stages.csv", buf.getvalue())

    def _finish(self, report: dict) -> None:
        from .fileio import write_json
        status = "finished" if all(r.get("status") == "finished" for r in self.rows) else "incomplete"
        write_json(self.folder / "summary.json", {"status": status, "report": report, "runs": self.rows})

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def staged_cli_run(experiment: dict, folder, control, progress=None, max_steps=None, seeds=None,
                   app_version: str = "") -> dict | None:
    """What ``python main.py run`` does for a staged experiment; returns the report."""
    writer = StagesWriter(folder, experiment, app_version)
    report = None
    try:
        for event in run_stages(experiment, control, max_steps=max_steps, seeds=seeds):
            writer.handle(event)
            if progress is not None:
                if isinstance(event, StageStarted):
                    reuse = "" if event.reuse is None else \
                        f" (reusing {event.reuse['k']} layer(s) of {event.reuse['from']})"
                    print(f"== stage {event.index + 1}: {event.stage}{reuse}, seed {event.seed}"
                          + (f" -- {event.title}" if event.title else ""), file=progress.stream)
                elif isinstance(event, StagesFinished):
                    report = event.report
                else:
                    progress.handle(event)
            elif isinstance(event, StagesFinished):
                report = event.report
    finally:
        writer.close()
    return report


def with_epochs(experiment: dict, epochs: int) -> dict:
    """A copy whose every stage phase trains for ``epochs`` epochs."""
    from .experiment import resolve_experiment

    exp = copy.deepcopy(experiment)
    for stage in exp["stages"]["list"]:
        for phase in stage["phases"]:
            phase["training"]["epochs"] = epochs
    return resolve_experiment(exp)


def cli_run_stages(args, experiment: dict, progress, control, app_version: str = "") -> int:
    """``python main.py run`` on a staged experiment (called by engine.cli)."""
    import signal
    import sys

    from .runstore import default_run_dir

    for flag in ("init_weights", "resume"):
        if getattr(args, flag, None):
            print(f"error: --{flag.replace('_', '-')} does not apply to a staged experiment (each stage builds "
                  f"its network from the stages section)", file=sys.stderr)
            return 2
    if args.epochs is not None:
        experiment = with_epochs(experiment, args.epochs)
    seeds = [args.seed] if args.seed is not None else None
    folder = Path(args.out) if args.out else default_run_dir(experiment["name"])

    def on_sigint(signum, frame):
        if control.stopped:
            raise KeyboardInterrupt
        print("\nstopping at the next step (Ctrl-C again to abort)...", file=sys.stderr)
        control.stop()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        report = staged_cli_run(experiment, folder, control, None if args.quiet else progress,
                                max_steps=args.steps, seeds=seeds, app_version=app_version)
    finally:
        signal.signal(signal.SIGINT, previous)
    if report is not None and not args.quiet:
        print(format_report(report), file=sys.stdout)
    print(f"run written to {folder}", file=sys.stderr if args.quiet else sys.stdout)
    return 0
