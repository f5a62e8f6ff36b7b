"""Comparisons: variants x seeds of one experiment, run fairly, reported honestly.

The optional ``compare`` section of an experiment::

    "compare": {
      "variants": [
        {"name": "nesterov"},                                      # the base experiment as it is
        {"name": "adam", "overrides": {"optimizer": {"name": "adam", "learning_rate": 0.001}}},
        {"name": "1cycle", "overrides": {"schedule": {"name": "onecycle"}}, "lr_finder": true}
      ],
      "seeds": 3,                            # a count (base seed, base seed + 1, ...) or a list [1, 2, 3]
      "target": {"metric": "val_accuracy", "value": 0.85},   # optional: "steps to reach"
      "metric": "auto"                       # the metric the verdicts use (auto: val_accuracy if any)
    }

Fairness.  Every job (variant, seed) is the base experiment with the
variant's ``overrides`` merged in (:func:`apply_overrides`) and ``seed`` set.
The engine derives the data split, the initial weights, the batch order and
the dropout masks from the seed alone, so all variants of one seed share the
data and the batch order, and every variant that keeps the layer sizes and
the initializers (a different optimizer, schedule, regularizer, dropout rate,
clipping, activation with the same initializer, batch normalization...)
starts from bit-identical kernels (biases, BN's gamma/beta and PReLU's slopes
always start at fixed values).  Each job records hashes of its initial
kernels and of its data + batch order, and the report states, per variant,
whether they match the first variant's for every seed: variants that change
layer sizes or initializers do NOT start from the same weights, and the
report says so instead of pretending.

The rule (one place: :func:`distinguishable`).  For two variants A and B the
per-seed differences ``d_s = metric_A(s) - metric_B(s)`` are paired by seed
(same weights, same batches).  The difference is reported as real only when
the mean paired difference is larger than the seed-to-seed spread, i.e. the
larger of the two variants' standard deviations across seeds (sample std,
ddof=1), with at least 2 seeds.  Otherwise the report says "not
distinguishable at N seeds".  The same rule is used by the stages report
(:mod:`engine.stages`).  A paired t-test p-value and the win count are shown
next to it as extra information; they never upgrade a verdict.  The verdicts
compare the *final* validation metric (what a run ends with), never the best
epoch picked after the fact.  The book's warning about "torturing the data
until it confesses" applies to the reader too: with many variants, the one
with the best mean is partly lucky, so the table lists every variant and the
number of seeds and marks only differences that clear the spread.

Running.  :func:`run_comparison` trains all jobs in a process pool (both
cores by default), each job writing a normal run folder with
:class:`~engine.runstore.RunWriter` under ``<out>/<variant>-seed<s>/``, then
writes ``comparison.json`` and ``comparison.csv`` (per variant: mean and std
across seeds of the final and best validation metric, steps to reach the
target, wall time) and returns the summary; :func:`format_table` prints it.
:func:`aggregate_curves` turns per-seed curves into a mean line and a
min-max band per variant on a common step axis (the window's overlay), and
:func:`comparison_curves` reads those curves back from a comparison folder.
"""
from __future__ import annotations

import copy
import csv
import hashlib
import json
import math
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .errors import ExperimentError, nearest
# the statistics and reports live in compare_report; re-exported: callers use engine.compare
from .compare_report import (aggregate_curves, comparison_csv, comparison_curves, distinguishable,  # noqa: F401
                             format_table, paired_t_pvalue, spread, summarize, write_comparison, _json_safe)

SECTION_KEYS = ("variants", "seeds", "target", "metric")
VARIANT_KEYS = ("name", "overrides", "lr_finder", "zero_weights_below")
OVERRIDABLE = ("data", "model", "loss", "optimizer", "schedule", "training")
TARGET_METRICS = ("val_accuracy", "val_loss")
VERDICT_METRICS = ("auto", "val_accuracy", "val_loss")
MAX_VARIANTS = 24
MAX_SEEDS = 50
DEFAULT_SEEDS = 3
STOP_FILE = "STOP"           # create this file in a comparison folder to stop its jobs
CLIP_KEYS = ("clipvalue", "clipnorm", "global_clipnorm")
NAMED_SECTIONS = ("data", "optimizer", "schedule")  # another "name" replaces the section


def _zero_param():
    from .params import Param

    return Param(None, "after training, set kernel weights with |w| below this to exactly 0 and measure the "
                       "validation and test metrics again (the variant reports those)", low=0.0, low_open=True,
                 high=1e3, optional=True)


ZERO_PARAM = _zero_param()

# The section's keys, documented (presets/README.md is generated from this table by
# tools/gen_schema_doc.py): (key, type, default, allowed values, meaning).
SECTION_DOC = (
    ("variants", "list of objects", "required", f"1 to {MAX_VARIANTS} variants",
     "the variants compared; each is the base experiment plus its overrides"),
    ("variants[].name", "string", "required", "unique, 1 to 60 characters",
     "shown in the table; also names the run folders (<name>-seed<s>)"),
    ("variants[].overrides", "object", "{}", ", ".join(OVERRIDABLE),
     "a partial experiment merged into the base (rules below); {} = the base itself"),
    ("variants[].lr_finder", "boolean or object", "false", "true, false or an object of the finder keys below",
     "run the learning-rate finder on this variant (same seed, weights restored); a 1cycle schedule peaks at "
     "the rate where the finder's loss was lowest, other schedules start from its suggestion (10x lower)"),
    ("variants[].zero_weights_below", "number or null", "null", "> 0",
     "after training, set kernel weights with |w| below this to exactly 0 and report the metrics measured "
     "afterwards (zeroed.json in the run folder has both)"),
    ("seeds", "integer or list of integers", str(DEFAULT_SEEDS), f"a count 1..{MAX_SEEDS} (seed, seed + 1, ...) "
     "or distinct integers 0..2^32-1", "every variant runs once per seed"),
    ("target", "object or null", "null", "{\"metric\": ..., \"value\": ...}",
     "optional: report the steps each run needed to reach it (checked at epoch ends)"),
    ("target.metric", "string", "val_accuracy", ", ".join(TARGET_METRICS), "the metric the target is about"),
    ("target.value", "number", "required", "0..1 for val_accuracy", "reached when val_accuracy >= value "
     "(or val_loss <= value)"),
    ("metric", "string", "auto", ", ".join(VERDICT_METRICS),
     "the final validation metric the verdicts compare; auto = the target's metric, else val_accuracy when "
     "the runs report one, else val_loss"),
)

# ----------------------------------------------------------------------------- overrides


def _merge(base: Any, over: Any, where: str) -> Any:
    """Deep merge ``over`` into ``base`` (both plain JSON data); see apply_overrides."""
    if isinstance(over, dict) and isinstance(base, dict):
        out = copy.deepcopy(base)
        for key, value in over.items():
            out[key] = _merge(base.get(key), value, f"{where}.{key}")
        return out
    if isinstance(over, dict) and isinstance(base, list) and all(isinstance(b, dict) for b in base):
        return [_merge_layer(b, over, f"{where}[{i}]") for i, b in enumerate(base)]
    return copy.deepcopy(over)


def _merge_layer(base: dict, over: dict, where: str) -> dict:
    """A layer (or output) merge that keeps the activation/initializer parameters consistent."""
    base = copy.deepcopy(base)
    if "activation" in over and over["activation"] != base.get("activation"):
        if "activation_params" not in over:
            base.pop("activation_params", None)
        if "initializer" not in over:
            base["initializer"] = None          # Table 11-1's match for the new activation
            base.pop("initializer_params", None)
    if "initializer" in over and over["initializer"] != base.get("initializer") \
            and "initializer_params" not in over:
        base.pop("initializer_params", None)
    return _merge(base, over, where)


def apply_overrides(experiment: Mapping, overrides: Mapping | None) -> dict:
    """The experiment with ``overrides`` merged in, resolved (validated, defaults filled).

    Works on raw or resolved experiments (the window applies the coach's "try
    it" modifications to a resolved one).  The rules:

    * objects merge key by key, recursively; any other value (number, string,
      list, null) replaces the base value;
    * ``data``, ``optimizer``, ``schedule``: an override with another
      ``name`` replaces the whole section (the optimizer keeps its gradient
      clipping keys), since the old keys may not exist for the new name;
    * ``model.layers``: a list replaces the layers; an object is merged into
      *every* hidden layer (``{"model": {"layers": {"activation": "elu"}}}``);
    * in a layer, a new ``activation`` drops the old ``activation_params``
      and resets the ``initializer`` to Table 11-1's match for the new
      activation, unless the override names them too; a new ``initializer``
      drops the old ``initializer_params``;
    * the result keeps no ``compare`` or ``stages`` section.
    """
    from .experiment import resolve_experiment

    if overrides is None:
        overrides = {}
    if not isinstance(overrides, Mapping):
        raise ExperimentError(f"overrides must be an object, got {overrides!r:.60}")
    out = copy.deepcopy(dict(experiment))
    for key, value in overrides.items():
        if key not in OVERRIDABLE:
            raise ExperimentError(f"overrides may change {', '.join(OVERRIDABLE)}; got {key!r}"
                                  f"{nearest(key, OVERRIDABLE)}")
        base = out.get(key)
        if key in NAMED_SECTIONS and isinstance(value, Mapping) and isinstance(base, Mapping) \
                and "name" in value and value["name"] != base.get("name"):
            kept = {k: base[k] for k in CLIP_KEYS if key == "optimizer" and base.get(k) is not None}
            out[key] = _merge(kept, dict(value), key)
        elif key == "model" and isinstance(value, Mapping) and isinstance(base, Mapping):
            model = copy.deepcopy(dict(base))
            for mkey, mval in value.items():
                if mkey == "layers" and isinstance(mval, Mapping):
                    model["layers"] = [_merge_layer(layer, dict(mval), f"model.layers[{i}]")
                                       for i, layer in enumerate(model.get("layers", []))]
                elif mkey == "output" and isinstance(mval, Mapping) and isinstance(model.get("output"), Mapping):
                    model["output"] = _merge_layer(model["output"], dict(mval), "model.output")
                else:
                    model[mkey] = _merge(model.get(mkey), mval, f"model.{mkey}")
            out["model"] = model
        else:
            out[key] = _merge(base, value, key)
    out["compare"] = None
    out["stages"] = None
    return resolve_experiment(out)


# ----------------------------------------------------------------------------- the section


def seed_list(value: Any, base_seed: int) -> list[int]:
    """compare.seeds (a count or a list) as the list of seeds, validated."""
    if value is None:
        value = DEFAULT_SEEDS
    if isinstance(value, bool):
        raise ExperimentError(f"compare.seeds must be a count or a list of seeds, got {value!r}")
    if isinstance(value, int):
        if not 1 <= value <= MAX_SEEDS:
            raise ExperimentError(f"compare.seeds must be from 1 to {MAX_SEEDS} seeds, got {value}")
        return [(base_seed + i) % 2**32 for i in range(value)]
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SEEDS:
        raise ExperimentError(f"compare.seeds must be a count (1..{MAX_SEEDS}) or a non-empty list of at most "
                              f"{MAX_SEEDS} seeds, got {value!r:.60}")
    for i, s in enumerate(value):
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**32:
            raise ExperimentError(f"compare.seeds[{i}] must be an integer from 0 to 2^32 - 1, got {s!r}")
    if len(set(value)) != len(value):
        raise ExperimentError(f"compare.seeds must not repeat a seed, got {value}")
    return list(value)


def _lr_finder_cfg(value: Any, where: str) -> dict | None:
    from .lr_finder import FINDER_PARAMS
    from .params import check_params

    if value is None or value is False:
        return None
    if value is True:
        value = {}
    if not isinstance(value, dict):
        raise ExperimentError(f"{where} must be true, false or an object with "
                              f"{', '.join(FINDER_PARAMS)}, got {value!r:.60}")
    return check_params(FINDER_PARAMS, value, where)


def resolve_compare(section: Any, experiment: dict) -> dict:
    """Validate the ``compare`` section against the resolved base experiment.

    Returns ``{"variants": [{"name", "overrides", "lr_finder"}], "seeds": [...],
    "target": {"metric", "value"} | None, "metric": ...}``.  Every variant is
    built once here, so a bad override fails when the file is loaded, naming
    the variant.
    """
    if not isinstance(section, dict):
        raise ExperimentError(f"compare must be an object with {', '.join(SECTION_KEYS)}, got {section!r:.60}")
    for key in section:
        if key not in SECTION_KEYS:
            raise ExperimentError(f"unknown key compare.{key}{nearest(key, SECTION_KEYS)}; "
                                  f"allowed: {', '.join(SECTION_KEYS)}")
    raw_variants = section.get("variants")
    if not isinstance(raw_variants, list) or not 1 <= len(raw_variants) <= MAX_VARIANTS:
        raise ExperimentError(f"compare.variants must be a list of 1 to {MAX_VARIANTS} variants "
                              f"({{\"name\": ..., \"overrides\": {{...}}}}), got {raw_variants!r:.60}")
    variants, names = [], set()
    for i, raw in enumerate(raw_variants):
        where = f"compare.variants[{i}]"
        if not isinstance(raw, dict):
            raise ExperimentError(f"{where} must be an object with a name and overrides, got {raw!r:.60}")
        for key in raw:
            if key not in VARIANT_KEYS:
                raise ExperimentError(f"unknown key {where}.{key}{nearest(key, VARIANT_KEYS)}; "
                                      f"allowed: {', '.join(VARIANT_KEYS)}")
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 60:
            raise ExperimentError(f"{where}.name must be a non-empty string of at most 60 characters, got {name!r}")
        if name in names:
            raise ExperimentError(f"{where}.name {name!r} is used by another variant; names must be unique")
        names.add(name)
        overrides = raw.get("overrides", {})
        if overrides is None:
            overrides = {}
        if not isinstance(overrides, dict):
            raise ExperimentError(f"{where}.overrides must be an object, got {overrides!r:.60}")
        finder = _lr_finder_cfg(raw.get("lr_finder"), f"{where}.lr_finder")
        zero = ZERO_PARAM.check(raw.get("zero_weights_below"), f"{where}.zero_weights_below")
        try:
            apply_overrides(experiment, overrides)
        except ExperimentError as exc:
            raise ExperimentError(f"{where} ({name}): {exc}") from None
        variants.append({"name": name, "overrides": copy.deepcopy(overrides), "lr_finder": finder,
                         "zero_weights_below": zero})
    seeds = seed_list(section.get("seeds"), experiment["seed"])
    target = section.get("target")
    if target is not None:
        if not isinstance(target, dict):
            raise ExperimentError(f"compare.target must be null or {{\"metric\": ..., \"value\": ...}}, "
                                  f"got {target!r:.60}")
        for key in target:
            if key not in ("metric", "value"):
                raise ExperimentError(f"unknown key compare.target.{key}{nearest(key, ('metric', 'value'))}; "
                                      f"allowed: metric, value")
        metric = target.get("metric", "val_accuracy")
        if metric not in TARGET_METRICS:
            raise ExperimentError(f"compare.target.metric must be one of {', '.join(TARGET_METRICS)}, got "
                                  f"{metric!r}{nearest(metric, TARGET_METRICS)}")
        value = target.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ExperimentError(f"compare.target.value must be a number, got {value!r}")
        if metric == "val_accuracy" and not 0.0 <= value <= 1.0:
            raise ExperimentError(f"compare.target.value for val_accuracy must be from 0 to 1, got {value!r}")
        target = {"metric": metric, "value": float(value)}
    metric = section.get("metric", "auto")
    if metric not in VERDICT_METRICS:
        raise ExperimentError(f"compare.metric must be one of {', '.join(VERDICT_METRICS)}, got "
                              f"{metric!r}{nearest(metric, VERDICT_METRICS)}")
    return {"variants": variants, "seeds": seeds, "target": target, "metric": metric}


# ----------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class Job:
    """One run of a comparison: a variant of the experiment with one seed."""
    index: int
    variant: str
    seed: int
    experiment: dict          # resolved, compare removed, seed set
    lr_finder: dict | None
    folder: str               # relative to the comparison folder
    zero_weights_below: float | None = None


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:60] or "variant"


def variant_experiment(experiment: dict, variant: Mapping, seed: int) -> dict:
    """The resolved experiment of one (variant, seed) job."""
    exp = apply_overrides(experiment, variant.get("overrides"))
    exp["seed"] = int(seed)
    exp["name"] = f"{experiment['name']}-{slug(variant['name'])}"
    exp["title"] = f"{experiment.get('title') or experiment['name']}: {variant['name']}"
    return exp


def comparison_jobs(experiment: dict, seeds: Sequence[int] | None = None,
                    overrides: Mapping | None = None) -> list[Job]:
    """All jobs of a comparison, seed-major (all variants of the first seed first).

    ``seeds`` replaces the section's seeds; ``overrides`` (e.g. fewer epochs
    for a quick look) is applied to every variant after its own overrides.
    """
    cfg = experiment.get("compare")
    if not cfg:
        raise ExperimentError("this experiment has no compare section")
    seeds = list(cfg["seeds"] if seeds is None else seeds)
    jobs = []
    for seed in seeds:
        for variant in cfg["variants"]:
            exp = variant_experiment(experiment, variant, seed)
            if overrides:
                exp = apply_overrides(exp, overrides)
                exp["seed"] = int(seed)
            jobs.append(Job(len(jobs), variant["name"], int(seed), exp, variant["lr_finder"],
                            f"{slug(variant['name'])}-seed{seed}", variant.get("zero_weights_below")))
    return jobs


def _hash(*arrays) -> str:
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _reached(metric: str, value: float, target: float) -> bool:
    if not math.isfinite(value):
        return False
    return value >= target if metric == "val_accuracy" else value <= target


def run_job(job: Job, root: str, target: dict | None = None, app_version: str = "",
            stop_file: str | None = None) -> dict:
    """Train one job into ``root/job.folder`` and return its record (runs in a worker process)."""
    from .control import RunControl
    from .events import EpochEnd, RunFinished, StepMetrics
    from .runstore import RunWriter
    from .training import Trainer

    start = time.perf_counter()
    experiment = job.experiment
    lr_found = None
    dataset = None
    if job.lr_finder is not None:
        from .lr_finder import apply_suggestion, chosen_rate, find_learning_rate

        probe = Trainer(experiment, run_id=job.index)
        result = find_learning_rate(probe, **job.lr_finder)
        lr_found = chosen_rate(experiment, result)
        experiment = apply_suggestion(experiment, result)
        dataset = probe.data
    trainer = Trainer(experiment, dataset=dataset, run_id=job.index)
    net = trainer.net
    # the random part of the start: every kernel (biases, BN gamma/beta and PReLU slopes start at
    # fixed values, so a variant that only adds BN or PReLU still starts from the same kernels)
    init_hash = _hash(*(net.tensor(t.name) for t in net.tensors if t.name.endswith(".kernel")))
    data_hash = _hash(trainer.x, trainer.y_int, trainer.y_float,
                      np.frombuffer(json.dumps(trainer.shuffle_rng.bit_generator.state, sort_keys=True,
                                               default=str).encode(), dtype=np.uint8),
                      np.array([trainer.batch_size, int(experiment["training"]["shuffle"])]))
    writer = RunWriter(Path(root) / job.folder, app_version)
    writer.attach(trainer, checkpoint=False)   # data statistics go with the weights (predict, export)
    control = RunControl()
    epochs: list[dict] = []
    steps_to_target = None
    finished = None
    stop_path = Path(stop_file) if stop_file else None
    history: dict = {"step": [], "loss": []}   # the training loss at every diagnostics record
    for event in trainer.run(control):
        writer.handle(event)
        if isinstance(event, StepMetrics):
            history["step"].append(event.step)
            history["loss"].append(event.loss)
            if stop_path is not None and stop_path.exists():
                control.stop()
        elif isinstance(event, EpochEnd):
            epochs.append({"epoch": event.epoch, "step": event.step, "train_loss": event.train_loss,
                           "train_accuracy": event.train_accuracy, "val_loss": event.val_loss,
                           "val_accuracy": event.val_accuracy, "sparsity": event.sparsity})
            if target is not None and steps_to_target is None and \
                    _reached(target["metric"], getattr(event, target["metric"]), target["value"]):
                steps_to_target = event.step
        elif isinstance(event, RunFinished):
            finished = event
    writer.close()
    s = dict(finished.summary)
    val_losses = [e["val_loss"] for e in epochs if math.isfinite(e["val_loss"])]
    threshold = experiment["training"]["sparsity_threshold"]
    sparsity = trainer.net.sparsity(threshold)
    zeroed = None
    if job.zero_weights_below is not None and finished.status != "diverged":
        from .fileio import write_json

        count = trainer.net.zero_small_weights(job.zero_weights_below)
        val_loss, val_acc = trainer.evaluate_split("val")
        test_loss, test_acc = trainer.evaluate_split("test")
        zeroed = {"threshold": job.zero_weights_below, "zeroed": count,
                  "sparsity_before": sparsity, "sparsity_after": trainer.net.sparsity(threshold),
                  "val_accuracy_before": s["final_val_accuracy"], "val_accuracy_after": val_acc,
                  "val_loss_before": s["final_val_loss"], "val_loss_after": val_loss,
                  "test_accuracy_before": s["test_accuracy"], "test_accuracy_after": test_acc}
        write_json(Path(root) / job.folder / "zeroed.json", _json_safe(zeroed))
        s.update(final_val_accuracy=val_acc, final_val_loss=val_loss, test_accuracy=test_acc)
        sparsity = zeroed["sparsity_after"]
    return {
        "variant": job.variant, "seed": job.seed, "folder": job.folder, "status": finished.status,
        "reason": finished.reason, "steps": finished.step, "epochs": finished.epoch,
        "final_val_accuracy": s["final_val_accuracy"], "final_val_loss": s["final_val_loss"],
        "best_val_accuracy": s["best_val_accuracy"], "best_val_loss": min(val_losses) if val_losses else math.nan,
        "final_train_loss": s["final_train_loss"], "test_accuracy": s["test_accuracy"],
        "steps_to_target": steps_to_target, "train_seconds": s["train_seconds"],
        "wall_seconds": time.perf_counter() - start, "init_hash": init_hash, "data_hash": data_hash,
        "lr_found": lr_found, "curve": epochs, "history": history, "sparsity": sparsity, "zeroed": zeroed,
    }


def _worker_init() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C (stop file)


def run_comparison(experiment: dict, out: str | os.PathLike, workers: int | None = None,
                   seeds: Sequence[int] | None = None, overrides: Mapping | None = None,
                   on_record: Callable[[dict, int, int], None] | None = None, app_version: str = "") -> dict:
    """Train every (variant, seed) job and write the comparison files into ``out``.

    ``workers``: processes (default: min(2, CPUs)); 1 runs the jobs in this
    process.  ``on_record(record, done, total)`` is called as jobs finish.
    Returns the summary written to ``comparison.json``.  Creating the file
    ``out/STOP`` (see :func:`request_stop`) stops the running jobs at their
    next logged step; their partial results are reported as "stopped".
    """
    from .fileio import ensure_dir

    out = ensure_dir(Path(out))
    cfg = experiment["compare"]
    jobs = comparison_jobs(experiment, seeds, overrides)
    stop_file = str(out / STOP_FILE)
    if Path(stop_file).exists():
        Path(stop_file).unlink()
    workers = workers or min(2, os.cpu_count() or 1)
    workers = max(1, min(workers, len(jobs)))
    start = time.perf_counter()
    records: list[dict] = []
    if workers == 1:
        for job in jobs:
            records.append(run_job(job, str(out), cfg["target"], app_version, stop_file))
            if on_record:
                on_record(records[-1], len(records), len(jobs))
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # safe under threads (the window) and with Numba
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init) as pool:
            futures = [pool.submit(run_job, job, str(out), cfg["target"], app_version, stop_file) for job in jobs]
            try:
                for future in as_completed(futures):
                    records.append(future.result())
                    if on_record:
                        on_record(records[-1], len(records), len(jobs))
            except BaseException:
                request_stop(out)
                for f in futures:
                    f.cancel()
                raise
    order = {(j.variant, j.seed): j.index for j in jobs}
    records.sort(key=lambda r: order[(r["variant"], r["seed"])])
    summary = summarize(records, cfg, experiment, seeds=[j.seed for j in jobs[::len(cfg["variants"])]])
    summary["total_wall_seconds"] = time.perf_counter() - start
    summary["workers"] = workers
    write_comparison(out, summary)
    return summary


def request_stop(folder: str | os.PathLike) -> None:
    """Ask the running jobs of the comparison in ``folder`` to stop."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    Path(folder, STOP_FILE).touch()


# ----------------------------------------------------------------------------- statistics


def parse_seeds_option(text: str | None) -> list[int] | int | None:
    """``--seeds 5`` (a count) or ``--seeds 1,2,3`` (a list)."""
    if text is None:
        return None
    try:
        if "," in text:
            return [int(t) for t in text.split(",") if t.strip()]
        return int(text)
    except ValueError:
        raise ExperimentError(f"--seeds must be a count (5) or a list (1,2,3), got {text!r}") from None


def cli_run_comparison(args, experiment: dict, app_version: str = "") -> int:
    """``python main.py run EXP`` for an experiment with a compare section."""
    import signal
    import sys

    from .runstore import default_run_dir

    if getattr(args, "init_weights", None) or getattr(args, "resume", None):
        raise ExperimentError("--init-weights and --resume do not apply to a comparison (every variant starts "
                              "from the weights its seed gives, that is the point)")
    seeds = None
    option = parse_seeds_option(getattr(args, "seeds", None))
    if args.seed is not None:
        seeds = [args.seed]
    elif option is not None:
        seeds = seed_list(option, experiment["seed"])
    overrides = {"training": {"max_steps": args.steps}} if args.steps else None
    folder = Path(args.out) if args.out else default_run_dir(experiment["name"])
    n_jobs = len(experiment["compare"]["variants"]) * len(seeds or experiment["compare"]["seeds"])
    stream = sys.stderr
    quiet = args.quiet
    if not quiet:
        print(f"comparing {len(experiment['compare']['variants'])} variants x "
              f"{n_jobs // len(experiment['compare']['variants'])} seeds = {n_jobs} runs in {folder} "
              f"(first run after install compiles the kernels)", file=stream)

    def on_record(r: dict, done: int, total: int) -> None:
        if quiet:
            return
        acc = r["final_val_accuracy"]
        metric = f"val_acc {acc:.4f}" if math.isfinite(acc) else f"val_loss {r['final_val_loss']:.4f}"
        extra = f", lr found {r['lr_found']:.3g}" if r.get("lr_found") else ""
        print(f"[{done}/{total}] {r['variant']} seed {r['seed']}: {r['status']}, {metric}, "
              f"{r['steps']:,} steps, {r['wall_seconds']:.1f}s{extra}", file=stream)

    def on_sigint(signum, frame):
        if (folder / STOP_FILE).exists():
            raise KeyboardInterrupt
        print("\nstopping every run at its next step (Ctrl-C again to abort)...", file=stream)
        request_stop(folder)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        summary = run_comparison(experiment, folder, workers=getattr(args, "workers", None), seeds=seeds,
                                 overrides=overrides, on_record=on_record, app_version=app_version)
    finally:
        signal.signal(signal.SIGINT, previous)
    print(format_table(summary))
    print(f"comparison written to {folder} (comparison.csv, comparison.json, one run folder per variant and seed)",
          file=stream if quiet else sys.stdout)
    return 0
