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

The rule (one place: :func:`~engine.jobs.compare_report.distinguishable`).  For two variants A and B the
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

Running.  A comparison is one kind of job of :func:`engine.jobs.runner.run_job`.
:func:`comparison_runs` turns the section into one :class:`~engine.jobs.runs.RunSpec`
per (variant, seed); :func:`comparison_events` hands them to an executor
(:mod:`engine.jobs.executors`: a process pool, both cores by default, or this
process), each run writing a normal run folder under
``<out>/<variant>-seed<s>/``, yields a ``ComparisonRecord`` as each run
finishes, then writes ``comparison.json`` and ``comparison.csv`` (per
variant: mean and std across seeds of the final and best validation metric,
steps to reach the target, wall time) and yields ``ComparisonFinished`` with
the summary.  The statistics, the table (:func:`~engine.jobs.compare_report.format_table`)
and the mean/min-max curves are in :mod:`engine.jobs.compare_report`.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Generator, Iterator, Mapping, Sequence

from engine.errors import ExperimentError
from engine.events import ComparisonFinished, ComparisonRecord
from engine.fileio import ensure_dir
from engine.jobs.compare_report import summarize, write_comparison
from engine.jobs.executors import Executor, Finished
from engine.jobs.runs import RunSpec
from engine.spec.compare import slug
from engine.spec.overrides import apply_overrides


def variant_experiment(experiment: dict, variant: Mapping, seed: int) -> dict:
    """The resolved experiment of one (variant, seed) run."""
    exp = apply_overrides(experiment, variant.get("overrides"))
    exp["seed"] = int(seed)
    exp["name"] = f"{experiment['name']}-{slug(variant['name'])}"
    exp["title"] = f"{experiment.get('title') or experiment['name']}: {variant['name']}"
    return exp


def variant_runs(experiment: dict, variants: Sequence[Mapping], seeds: Sequence[int],
                 overrides: Mapping | None = None, target: Mapping | None = None) -> list[RunSpec]:
    """One run per (variant, seed), seed-major (all variants of the first seed first, so every
    variant has a result early); a sweep's trials are variants too (:meth:`Trial.as_variant
    <engine.spec.sweep.Trial.as_variant>`).  ``overrides`` (e.g. fewer steps for a quick look) is
    applied to every variant after its own overrides."""
    runs = []
    for seed in seeds:
        for variant in variants:
            exp = variant_experiment(experiment, variant, seed)
            if overrides:
                exp = apply_overrides(exp, overrides)
                exp["seed"] = int(seed)
            runs.append(RunSpec(len(runs), variant["name"], int(seed), exp, variant["lr_finder"],
                                f"{slug(variant['name'])}-seed{seed}", variant.get("zero_weights_below"), target))
    folders = [r.folder.casefold() for r in runs]
    if len(set(folders)) != len(folders):   # variants of a sweep are named here, not by resolve_compare
        twice = next(f for f in folders if folders.count(f) > 1)
        raise ExperimentError(f"two variants would train into the same run folder {twice!r}; rename one")
    return runs


def comparison_runs(experiment: dict, seeds: Sequence[int] | None = None,
                    overrides: Mapping | None = None) -> list[RunSpec]:
    """All runs of a comparison (:func:`variant_runs` of its variants); ``seeds`` replaces the
    section's seeds."""
    cfg = experiment.get("compare")
    if not cfg:
        raise ExperimentError("this experiment has no compare section")
    return variant_runs(experiment, cfg["variants"], list(cfg["seeds"] if seeds is None else seeds), overrides,
                        cfg["target"])


def executed(runs: Sequence[RunSpec], executor: Executor,
             record_event: Callable[[Finished, int, int], object]) -> Generator[object, None, list[dict]]:
    """Train ``runs`` on ``executor``: yields ``record_event(finished, done, total)`` as each run
    finishes (and whatever else the executor streams); returns the records in the order of ``runs``
    (whatever order they finished in), so the files written from them do not depend on the executor."""
    records: list[dict] = []
    with executor:
        for spec in runs:
            executor.submit(spec)
        for item in executor.results():
            if isinstance(item, Finished):
                records.append(item.record)
                yield record_event(item, len(records), len(runs))
            else:
                yield item
    order = {(r.variant, r.seed): r.index for r in runs}
    return sorted(records, key=lambda r: order[(r["variant"], r["seed"])])


def comparison_events(experiment: dict, runs: Sequence[RunSpec], out: Path | None,
                      executor: Executor) -> Iterator:
    """Train ``runs`` (of :func:`comparison_runs`) on ``executor``; yield a ComparisonRecord per
    finished run (and whatever else the executor streams), then write the comparison files into
    ``out`` (unless None) and yield ComparisonFinished with the summary."""
    if out is not None:
        ensure_dir(out)
    cfg = experiment["compare"]
    start = time.perf_counter()
    records = yield from executed(runs, executor, lambda f, done, total: ComparisonRecord(f.record, done, total))
    summary = summarize(records, cfg, experiment, seeds=[r.seed for r in runs[::len(cfg["variants"])]])
    summary["total_wall_seconds"] = time.perf_counter() - start
    summary["workers"] = executor.workers
    if out is not None:
        write_comparison(out, summary)
    yield ComparisonFinished(summary, None if out is None else str(out))
