"""Running a sweep: its trials x seeds trained as a comparison's variants are, reported by
:mod:`engine.jobs.sweep_report`.

A sweep is one kind of job of :func:`engine.jobs.runner.run_job`.  Why it
reuses the comparison's machinery instead of a loop of its own: a trial *is* a
variant (:meth:`~engine.spec.sweep.Trial.as_variant`: the base experiment with
the trial's overrides merged in by the one overrides rule), so every run of a
seed gets the same data split, initial weights and batch order whichever
trial it belongs to, runs on the same executors (this process, the local pool,
a cluster), writes the same run folder (``<out>/<trial>-seed<s>/``) and
returns the same record.  Only the report differs: :func:`sweep_events` yields
a :class:`~engine.events.SweepRecord` per finished run, then writes
``sweep.json``, ``sweep.csv`` and ``sweep_trials.csv`` and yields
:class:`~engine.events.SweepFinished` with the summary
(:func:`~engine.jobs.sweep_report.summarize_sweep`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from engine.errors import ExperimentError
from engine.events import SweepFinished, SweepRecord
from engine.fileio import ensure_dir
from engine.jobs.compare import executed, variant_runs
from engine.jobs.executors import Executor
from engine.jobs.runs import RunSpec
from engine.jobs.sweep_report import summarize_sweep, write_sweep
from engine.spec.sweep import Trial, sweep_trials


def sweep_runs(experiment: dict, seeds: Sequence[int] | None = None,
               overrides: Mapping | None = None) -> tuple[list[Trial], list[RunSpec]]:
    """The sweep's trials and one run per (trial, seed), seed-major (every trial of the first seed
    first, so the plot has a point per trial early); ``seeds`` replaces the section's seeds,
    ``overrides`` is applied to every run after its trial's values (e.g. fewer steps)."""
    cfg = experiment.get("sweep")
    if not cfg:
        raise ExperimentError("this experiment has no sweep section")
    trials = sweep_trials(experiment)
    runs = variant_runs(experiment, [t.as_variant() for t in trials],
                        list(cfg["seeds"] if seeds is None else seeds), overrides)
    return trials, runs


def sweep_events(experiment: dict, trials: Sequence[Trial], runs: Sequence[RunSpec], out: Path | None,
                 executor: Executor) -> Iterator:
    """Train ``runs`` (of :func:`sweep_runs`) on ``executor``; yield a SweepRecord per finished run
    (and whatever else the executor streams), then write the sweep files into ``out`` (unless None)
    and yield SweepFinished with the summary."""
    if out is not None:
        ensure_dir(out)
    index = {t.name: t.index for t in trials}
    start = time.perf_counter()
    records = yield from executed(runs, executor, lambda f, done, total: SweepRecord(f.record, done, total,
                                                                                     index[f.spec.variant]))
    seeds = [r.seed for r in runs[::len(trials)]]
    summary = summarize_sweep(records, trials, experiment["sweep"], seeds=seeds, experiment=experiment["name"])
    summary["total_wall_seconds"] = time.perf_counter() - start
    summary["workers"] = executor.workers
    if out is not None:
        write_sweep(out, summary)
    yield SweepFinished(summary, None if out is None else str(out))
