"""A job on a terminal: the one printer of every job's events, and the one way to drive a job
from the command line (:func:`run_in_terminal`: Ctrl-C stops at the next step, a second one aborts).

What goes where: progress (the status line of a training run, one line per
stage, one line per finished run of a comparison or sweep) goes to stderr and is left
out with ``quiet``; results (a comparison's or sweep's table, a staged run's report, the
LR finder's sweep) go to stdout; "written to <folder>" closes every job, on
stderr when quiet.
"""
from __future__ import annotations

import math
import sys
import time
from contextlib import closing
from typing import TextIO

import numpy as np

from engine.control import RunControl, stop_on_interrupt
from engine.events import (ComparisonFinished, Compiling, EpochEnd, JobFinished, JobStarted, LRFinderFinished,
                           RunDone, RunFinished, RunStarted, StepMetrics, SweepFinished)
from engine.jobs.compare_report import format_table
from engine.jobs.sweep_report import format_sweep_table
from engine.jobs.runner import JobRequest, run_job
from engine.jobs.runs import FAILED
from engine.jobs.stages import format_report
from engine.spec.stages import StagesFinished, StageStarted


def _fmt(value: float, spec: str = ".4f") -> str:
    return "   -  " if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


class Progress:
    """One status line of a training run, rewritten in place: epoch, loss, validation metric, steps/s."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.total_epochs = self.total_steps = 0
        self.epoch_line = ""
        self._last = 0.0
        self.interactive = stream.isatty()

    def handle(self, event) -> None:
        if isinstance(event, RunStarted):
            self.total_epochs = event.experiment["training"]["epochs"]
            self.total_steps = event.total_steps
            print(f"training {event.experiment['name']}: {len(event.layers)} dense layers, "
                  f"{event.n_params:,} parameters, {event.total_steps:,} steps", file=self.stream)
        elif isinstance(event, Compiling) and not event.done:
            print("compiling kernels (first run after install; cached afterwards)...", file=self.stream)
        elif isinstance(event, StepMetrics):
            now = time.monotonic()
            if self.interactive and now - self._last > 0.1:
                self._last = now
                width = 24
                filled = int(width * event.step / max(1, self.total_steps))
                bar = "#" * filled + "." * (width - filled)
                print(f"\r[{bar}] epoch {event.epoch:6.2f}/{self.total_epochs} loss {_fmt(event.loss)} "
                      f"{self.epoch_line} {event.steps_per_second:,.0f} steps/s   ", end="", file=self.stream)
        elif isinstance(event, EpochEnd):
            metric = (f"val_acc {_fmt(event.val_accuracy)}" if not math.isnan(event.val_accuracy)
                      else f"val_loss {_fmt(event.val_loss)}")
            self.epoch_line = metric
            line = (f"epoch {event.epoch}/{self.total_epochs}  train_loss {_fmt(event.train_loss)}  "
                    f"val_loss {_fmt(event.val_loss)}  val_acc {_fmt(event.val_accuracy)}  "
                    f"{event.wall_time:.2f}s")
            print(("\r" if self.interactive else "") + line + " " * 10, file=self.stream)
        elif isinstance(event, RunFinished):
            s = event.summary
            print(f"{event.status}: {event.reason}; {s['steps']:,} steps, "
                  f"{_fmt(s['steps_per_second'], ',.0f')} steps/s, val_acc {_fmt(s['final_val_accuracy'])}",
                  file=self.stream)


def format_sweep(result, rows: int = 16) -> str:
    """A short text table of an LR-finder sweep (:class:`~engine.training.lr_finder.LRFinderResult`)
    and its suggestion."""
    lines = [f"{'learning rate':>14s} {'loss':>10s} {'smoothed':>10s}"]
    if result.lrs.size:
        for i in np.unique(np.linspace(0, result.lrs.size - 1, min(rows, result.lrs.size)).astype(int)):
            lines.append(f"{result.lrs[i]:14.3g} {result.losses[i]:10.4f} {result.smoothed[i]:10.4f}")
    lines.append(f"turning point (lowest smoothed loss, where the loss starts to climb) at lr "
                 f"{result.turning_lr:.3g}; steepest descent at {result.steepest_lr:.3g}"
                 + ("; the loss blew up after that" if result.stopped_early else ""))
    lines.append(f"suggested learning rate: {result.suggested_lr:.3g} (the book's rule: 10x below the turning "
                 f"point; used as the constant rate, or as a 1cycle schedule's peak)")
    return "\n".join(lines)


PER_EPOCH = (StepMetrics, EpochEnd)   # a training run's records: progress, nothing else

WRITTEN = {"single": "run written to {}", "staged": "run written to {}",
           "compared": "comparison written to {} (comparison.csv, comparison.json, one run folder per variant "
                       "and seed)",
           "sweep": "sweep written to {} (sweep.csv, sweep_trials.csv, sweep.json, one run folder per trial and seed)",
           "lr_find": "sweep written to {}"}


class ConsolePrinter:
    """Prints the events of any job (see the module docstring for what goes where)."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None, out: TextIO | None = None):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.out = out or sys.stdout
        self.progress = Progress(self.stream)

    def handle(self, event) -> None:
        if isinstance(event, PER_EPOCH):   # the frequent ones first: a small net makes thousands a second
            if not self.quiet:
                self.progress.handle(event)
        elif isinstance(event, JobStarted):
            if event.kind == "compared" and not self.quiet:
                print(f"comparing {len(event.variants)} variants x {len(event.seeds)} seeds = {event.runs} runs "
                      f"in {event.folder} (first run after install compiles the kernels)", file=self.stream)
            elif event.kind == "sweep" and not self.quiet:
                print(f"sweeping {len(event.variants)} trials x {len(event.seeds)} seeds = {event.runs} runs on "
                      f"{event.workers} process{'es' if event.workers > 1 else ''} in {event.folder}", file=self.stream)
        elif isinstance(event, RunDone):                    # a comparison's or a sweep's run
            if not self.quiet:
                print(self.record_line(event), file=self.stream)
        elif isinstance(event, ComparisonFinished):
            print(format_table(event.summary), file=self.out)
        elif isinstance(event, SweepFinished):
            print(format_sweep_table(event.summary), file=self.out)
            s = event.summary
            print(f"{s['n_trials']} trials x {s['n_seeds']} seeds in {s['total_wall_seconds']:.0f} s on {s['workers']} "
                  f"process{'es' if s['workers'] > 1 else ''}", file=self.out)
        elif isinstance(event, StageStarted):
            if not self.quiet:
                reuse = "" if event.reuse is None else \
                    f" (reusing {event.reuse['k']} layer(s) of {event.reuse['from']})"
                print(f"== stage {event.index + 1}: {event.stage}{reuse}, seed {event.seed}"
                      + (f" -- {event.title}" if event.title else ""), file=self.stream)
        elif isinstance(event, StagesFinished):
            if not self.quiet:
                print(format_report(event.report), file=self.out)
        elif isinstance(event, LRFinderFinished):
            print(format_sweep(event.result), file=self.out)
        elif isinstance(event, JobFinished):
            if event.folder is not None:
                print(WRITTEN[event.kind].format(event.folder), file=self.stream if self.quiet else self.out)
        elif not self.quiet:
            self.progress.handle(event)

    @staticmethod
    def record_line(event: RunDone) -> str:
        r = event.record
        if r["status"] == FAILED:
            return f"[{event.done}/{event.total}] {r['variant']} seed {r['seed']}: failed, {r['reason']}"
        acc = r["final_val_accuracy"]
        metric = f"val_acc {acc:.4f}" if math.isfinite(acc) else f"val_loss {r['final_val_loss']:.4f}"
        extra = f", lr found {r['lr_found']:.3g}" if r.get("lr_found") else ""
        return (f"[{event.done}/{event.total}] {r['variant']} seed {r['seed']}: {r['status']}, {metric}, "
                f"{r['steps']:,} steps, {r['wall_seconds']:.1f}s{extra}")


def run_in_terminal(request: JobRequest, quiet: bool = False) -> int:
    """Run ``request`` with its progress printed and Ctrl-C stopping it; the exit status (0).
    Input errors are raised (the caller turns them into one line and status 2)."""
    control = RunControl()
    printer = ConsolePrinter(quiet)
    with stop_on_interrupt(control, printer.stream), closing(run_job(request, control)) as events:
        for event in events:
            printer.handle(event)
    return 0
