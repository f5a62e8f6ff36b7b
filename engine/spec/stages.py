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

Every stage is the top-level experiment with the sections it names
(``data``, ``model``, ``loss``, ``optimizer``, ``schedule``, ``training``)
merged in by the one rule of :func:`engine.spec.overrides.merge_overrides`,
the rule of a comparison's variants: objects merge key by key; another
``name`` (data set, optimizer, schedule) replaces the section;
``model.layers`` given as a list replaces the hidden layers and
``model.output`` merges into the output layer.  With ``reuse``, ``model``
describes only what goes *on top of* the reused layers: ``layers`` (new
hidden layers, default none) and ``output`` (the new output layer, merged
over the top-level output like any override).

``import`` = ``"models/x.safetensors"`` (or .onnx, .keras, .h5): the stage's
network is not trained but read from that file by ``engine.formats.importers``
(a PyTorch state_dict laid out by the stage's ``model``; every format must
agree with it) and evaluated on the stage's data; later stages reuse it like
any other.  The stage's data must be scaled as the model's training data
were (``"standardize": false`` for raw inputs).

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
* ``optimizer``, ``schedule``, ``training``: merged into the stage's by
  the same rule; ``epochs`` and ``learning_rate`` are short for
  ``training.epochs`` and ``optimizer.learning_rate``, and
  ``learning_rate_factor`` sets the stage's learning rate times the factor
  (the book divides it by 10 when unfreezing);
* ``cache``: train this phase on the cached outputs of the frozen bottom
  layers (:mod:`engine.training.transfer`); refused with a message naming the layer
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
the one rule of every comparison in Descent, :func:`engine.jobs.compare.distinguishable`.
The verdict uses the final weights' metric, never the best epoch picked
after the fact.

Events and the time axis
------------------------
:func:`run_stages` yields, for every seed and every stage in order:
``StageStarted``; ``StageData`` once the stage's data are loaded (their
statistics go with every weights file of the stage); then, per phase, the phase's ordinary run events
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

The last phase's folder holds the stage's final ``weights.safetensors`` (``run --weights-format``
chooses NPZ or both).

Everything here is validated when the experiment is loaded; errors name the
key (``stages.list[2].phases[1].freeze``) and what is allowed.
"""
from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from typing import Any

from engine.errors import ExperimentError, nearest
from engine.spec.overrides import merge_overrides
from engine.spec.reuse import ALL_BUT_OUTPUT, check_compatible, resolve_layer_count, reused_model_config
from engine.spec.sections import check_unknown, require_mapping, resolve_single
from engine.spec.seeds import STAGE_SEEDS, seed_list

STAGE_KEYS = ("name", "title", "data", "model", "reuse", "loss", "optimizer", "schedule", "training", "phases",
              "import")
REUSE_KEYS = ("from", "layers", "freeze", "standardize_like_source")
PHASE_KEYS = ("name", "freeze", "epochs", "learning_rate", "learning_rate_factor", "optimizer", "schedule",
              "training", "cache", "measure_caching")
SECTION_KEYS = ("seeds", "list", "report")
REPORT_KEYS = ("metric", "baseline", "compare", "target")
METRICS = {"test_accuracy": True, "best_val_accuracy": True, "final_val_accuracy": True,
           "test_loss": False, "final_val_loss": False}
MAX_STAGES = 50
MAX_PHASES = 20
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
class StageData:
    """The data a stage trains on, once loaded: what its weights files need to stand alone
    (``engine.formats.data_info``: class names, input scaling) for ``predict`` and export."""
    run_id: int
    seed: int
    stage: str
    data: dict


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


def _single(experiment: dict, where: str) -> dict:
    """Resolve one stage (or phase) as an ordinary experiment; errors get a prefix."""
    try:
        return resolve_single(experiment)
    except ExperimentError as exc:
        raise ExperimentError(f"{where}: {exc}") from None


def _section_overrides(raw: dict, keys, where: str) -> dict:
    """The sections of ``keys`` that ``raw`` names, as overrides (objects checked here, so
    the error names the stage or phase)."""
    out = {}
    for key in keys:
        if key in raw:
            out[key] = raw[key] if key == "loss" else require_mapping(raw[key], f"{where}.{key}")
    return out


def _resolve_stage(raw: Any, i: int, top: dict, done: dict) -> dict:
    where = f"stages.list[{i}]"
    raw = require_mapping(raw, where)
    check_unknown(raw, STAGE_KEYS, where)
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
    overrides = _section_overrides(raw, ("data", "loss", "optimizer", "schedule", "training"), where)

    stage["import"] = _import_file(raw, where)   # a network trained elsewhere (issue 16)
    reuse = None
    k = 0
    if raw.get("reuse") is not None:
        r = require_mapping(raw["reuse"], f"{where}.reuse")
        check_unknown(r, REUSE_KEYS, f"{where}.reuse")
        src = r.get("from")
        if src not in done:
            raise ExperimentError(f"{where}.reuse.from must name an earlier stage "
                                  f"({', '.join(done) or 'there is none'}), got {src!r}{nearest(src, done)}")
        src_layers = done[src]["resolved"]["model"]["layers"]
        k = resolve_layer_count(r.get("layers", ALL_BUT_OUTPUT), len(src_layers), f"{where}.reuse.layers")
        for key in ("freeze", "standardize_like_source"):
            if not isinstance(r.get(key, True), bool):
                raise ExperimentError(f"{where}.reuse.{key} must be true or false, got {r[key]!r}")
        reuse = {"from": src, "layers": r.get("layers", ALL_BUT_OUTPUT), "freeze": r.get("freeze", True),
                 "standardize_like_source": r.get("standardize_like_source", True)}
        own = require_mapping(raw.get("model", {}), f"{where}.model")
        check_unknown(own, ("layers", "output"), f"{where}.model")
        if not isinstance(own.get("layers", []), list):
            raise ExperimentError(f"{where}.model.layers must be a list of the new layers on top of the reused ones")
        # the output merges over the top-level one like any override; the hidden layers are
        # the reused ones plus the new ones, never the top-level model's
        merged = merge_overrides(top, dict(overrides, model={"output": own.get("output", {})}))
        merged["model"] = reused_model_config(src_layers, k, own.get("layers", []), merged["model"]["output"],
                                              freeze=False)
    else:
        if "model" in raw:
            overrides["model"] = require_mapping(raw["model"], f"{where}.model")
        merged = merge_overrides(top, overrides)
    resolved = _single(merged, where)
    layers = resolved["model"]["layers"]
    if reuse is not None:
        check_compatible(done[reuse["from"]]["resolved"]["model"]["layers"], layers, k, f"{where}.reuse")
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
        rp = require_mapping(rp, pw)
        check_unknown(rp, PHASE_KEYS, pw)
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
        overrides = _section_overrides(rp, ("optimizer", "schedule", "training"), pw)
        if "learning_rate" in rp and "learning_rate_factor" in rp:
            raise ExperimentError(f"{pw}: give learning_rate or learning_rate_factor, not both")
        if "learning_rate" in rp:
            overrides["optimizer"] = dict(overrides.get("optimizer", {}), learning_rate=rp["learning_rate"])
        if "learning_rate_factor" in rp:
            f = rp["learning_rate_factor"]
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not (0 < f <= 1e6) or not math.isfinite(f):
                raise ExperimentError(f"{pw}.learning_rate_factor must be a number > 0 (0.1 divides the stage's "
                                      f"learning rate by 10), got {f!r}")
            overrides["optimizer"] = dict(overrides.get("optimizer", {}),
                                          learning_rate=stage["optimizer"]["learning_rate"] * f)
        if "epochs" in rp:
            overrides["training"] = dict(overrides.get("training", {}), epochs=rp["epochs"])
        for key in ("cache", "measure_caching"):
            if not isinstance(rp.get(key, False), bool):
                raise ExperimentError(f"{pw}.{key} must be true or false, got {rp[key]!r}")
        pexp = _single(merge_overrides(dict(resolved, model=_phase_model(layers, resolved["model"]["output"],
                                                                         frozen)), overrides), pw)
        phase = {"name": pname, "freeze": frozen, "optimizer": pexp["optimizer"], "schedule": pexp["schedule"],
                 "training": pexp["training"], "cache": rp.get("cache", False),
                 "measure_caching": rp.get("measure_caching", False)}
        if phase["cache"] or phase["measure_caching"]:
            _check_cache_static(layers, frozen, pw)
        phases.append(phase)
    stage["phases"] = phases
    done[name] = {"resolved": resolved, "k": k}
    return stage


def _import_file(raw: dict, where: str) -> str | None:
    """``"import": "models/x.safetensors"``: the stage's network is read from that file (laid out by the
    stage's ``model``) instead of trained; later stages reuse it like any other.  A relative path is relative
    to the experiment file (``load_experiment``), else to the presets folder."""
    path = raw.get("import")
    if path is None:
        return None
    if not isinstance(path, str) or not path.strip() or len(path) > 4096:
        raise ExperimentError(f"{where}.import must be the path of a model file (.safetensors, .onnx, .keras or "
                              f".h5), got {path!r:.80}")
    phases = raw.get("phases")
    if raw.get("reuse") is not None or (phases is not None and not (
            isinstance(phases, list) and len(phases) == 1 and isinstance(phases[0], dict)
            and phases[0].get("name") == "train")):
        raise ExperimentError(f"{where}: an imported stage is not trained: it takes neither reuse nor phases "
                              f"(train the network in a later stage that reuses it)")
    return path


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
    raw = {} if raw is None else require_mapping(raw, "stages.report")
    check_unknown(raw, REPORT_KEYS, "stages.report")
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
    section = require_mapping(section, "stages")
    check_unknown(section, SECTION_KEYS, "stages")
    if experiment.get("compare") is not None:
        raise ExperimentError("an experiment has either a compare section or a stages section, not both; "
                              "stages has its own seeds and report")
    raw_list = section.get("list")
    if not isinstance(raw_list, list) or not 1 <= len(raw_list) <= MAX_STAGES:
        raise ExperimentError(f"stages.list must be a list of 1 to {MAX_STAGES} stage objects")
    done: dict = {}
    stages = [_resolve_stage(raw, i, experiment, done) for i, raw in enumerate(raw_list)]
    return {"seeds": seed_list(section.get("seeds"), experiment["seed"], STAGE_SEEDS), "list": stages,
            "report": _resolve_report(section.get("report"), stages)}


# ======================================================================= running

def stage_model(stage: dict, staged: dict) -> tuple[dict, int]:
    """(full model section of a stage, number of reused layers k)."""
    if stage["reuse"] is None:
        return copy.deepcopy(stage["model"]), 0
    by_name = {s["name"]: s for s in staged["list"]}
    src_model, _ = stage_model(by_name[stage["reuse"]["from"]], staged)
    k = resolve_layer_count(stage["reuse"]["layers"], len(src_model["layers"]))
    return reused_model_config(src_model["layers"], k, stage["model"]["layers"], stage["model"]["output"],
                               freeze=False), k


def phase_experiment(experiment: dict, stage: dict, phase_index: int, seed: int) -> dict:
    """The ordinary (single-run) resolved experiment of one phase."""
    staged = experiment["stages"]
    model, _ = stage_model(stage, staged)
    phase = stage["phases"][phase_index]
    exp = {"format_version": experiment["format_version"], "name": f"{experiment['name']}/{stage['name']}",
           "title": stage["title"] or experiment["title"], "section": experiment["section"],
           "seed": (seed + PHASE_SEED_STRIDE * phase_index) % 2**32, "data": stage["data"],
           "model": _phase_model(model["layers"], model["output"], phase["freeze"]), "loss": stage["loss"],
           "optimizer": phase["optimizer"], "schedule": phase["schedule"], "training": phase["training"]}
    return resolve_single(exp)
