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
(:mod:`engine.spec.stages`).  A paired t-test p-value and the win count are shown
next to it as extra information; they never upgrade a verdict.  The verdicts
compare the *final* validation metric (what a run ends with), never the best
epoch picked after the fact.  The book's warning about "torturing the data
until it confesses" applies to the reader too: with many variants, the one
with the best mean is partly lucky, so the table lists every variant and the
number of seeds and marks only differences that clear the spread.

Running.  :func:`run_comparison` trains all jobs in a process pool (both
cores by default), each job writing a normal run folder with
:class:`~engine.formats.runstore.RunWriter` under ``<out>/<variant>-seed<s>/``, then
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

from engine.errors import ExperimentError
from engine.spec.seeds import parse_seeds_option, seed_list  # noqa: F401  (re-exported for callers)
from engine.spec.overrides import apply_overrides  # noqa: F401
# the statistics and reports live in compare_report; re-exported: callers use engine.jobs.compare
from engine.jobs.compare_report import (aggregate_curves, comparison_csv, comparison_curves, distinguishable,  # noqa: F401
                             format_table, paired_t_pvalue, spread, summarize, write_comparison, _json_safe)

STOP_FILE = "STOP"           # create this file in a comparison folder to stop its jobs

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
    from engine.control import RunControl
    from engine.events import EpochEnd, RunFinished, StepMetrics
    from engine.formats.runstore import RunWriter
    from engine.training.trainer import Trainer

    start = time.perf_counter()
    experiment = job.experiment
    lr_found = None
    dataset = None
    if job.lr_finder is not None:
        from engine.training.lr_finder import apply_suggestion, chosen_rate, find_learning_rate

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
        from engine.fileio import write_json

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
    from engine.fileio import ensure_dir

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


def cli_run_comparison(args, experiment: dict, app_version: str = "") -> int:
    """``python main.py run EXP`` for an experiment with a compare section."""
    import signal
    import sys

    from engine.formats.runstore import default_run_dir

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
