"""The records a training run emits.

A run is a generator of these events (see :mod:`engine.training.trainer`).  They are
immutable: frozen dataclasses whose arrays are read-only copies, so a consumer
on another thread (the window) can keep them without locks.

Per-layer arrays have one entry per dense layer, hidden layers first, the
output layer last (the same ``<i>`` as the weight names ``layers.<i>.*``).
Values that do not apply are NaN (for example the dead fraction of a tanh
layer, or the saturated fraction of a ReLU layer).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


def frozen_array(values, dtype=np.float64) -> np.ndarray:
    """A read-only copy, safe to hand to another thread."""
    arr = np.array(values, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class LayerInfo:
    index: int
    name: str              # "layers.<i>"
    units: int
    fan_in: int
    activation: str
    batch_norm: str        # "none" | "before" | "after"
    trainable: bool
    relu_family: bool      # dead-unit counts apply
    saturating: bool       # saturated fraction applies (logistic, tanh)
    n_params: int


@dataclass(frozen=True)
class RunStarted:
    run_id: int
    experiment: dict           # the fully resolved experiment
    layers: tuple              # tuple[LayerInfo, ...]
    n_params: int
    steps_per_epoch: int
    total_steps: int
    task: str                  # "classification" | "binary" | "regression" | "reconstruction"
    n_classes: int
    class_names: tuple
    input_dim: int
    image_shape: tuple | None
    histogram_edges: np.ndarray  # (n_bins + 1,) edges of the pre-activation histograms
    stage: str = ""            # name of the stage for multi-stage experiments


@dataclass(frozen=True)
class Compiling:
    """Numba is compiling kernels (first run after install); may take seconds."""
    run_id: int
    done: bool


@dataclass(frozen=True)
class StepMetrics:
    """Diagnostics at one logged step (after the update of that step).

    ``losses`` holds the training loss of every step since the previous
    record (steps ``step - len(losses) + 1 .. step``), so a per-step loss curve
    can be drawn without one event per step.
    """
    run_id: int
    step: int                  # 1-based count of updates done
    epoch: float               # fractional epoch, e.g. 2.5
    loss: float                # mean of ``losses``
    losses: np.ndarray         # (k,)
    regularization: float      # l1/l2 penalty part of the loss at this step
    learning_rate: float
    momentum: float            # the cycled hyperparameter (NaN if none)
    grad_norm: np.ndarray      # (L,) L2 norm of the kernel gradient
    bias_grad_norm: np.ndarray # (L,)
    update_ratio: np.ndarray   # (L,) ||delta kernel|| / ||kernel||
    dead_fraction: np.ndarray  # (L,) units whose output is 0 on every probe row; NaN for non-ReLU-family layers
    dead_count: np.ndarray     # (L,)
    comatose_fraction: np.ndarray  # (L,) units whose activation input is <= 0 on every probe row (dead ReLUs, and
    comatose_count: np.ndarray     # (L,)  leaky/ELU units left with only their small negative-side slope); NaN as dead
    act_mean: np.ndarray       # (L,) of the layer outputs on the probe batch
    act_std: np.ndarray        # (L,)
    saturated: np.ndarray      # (L,) NaN for non-saturating activations
    histograms: np.ndarray     # (L, n_bins) pre-activation counts, probe batch
    steps_per_second: float
    elapsed: float             # seconds of training so far (pauses excluded)


@dataclass(frozen=True)
class EpochEnd:
    run_id: int
    epoch: int                 # 1-based
    step: int
    train_loss: float
    train_accuracy: float      # NaN for regression
    val_loss: float
    val_accuracy: float
    learning_rate: float
    wall_time: float           # seconds this epoch took
    sparsity: float            # fraction of kernel weights with |w| < threshold


@dataclass(frozen=True)
class DecisionSurface:
    """Model output on a grid over the 2-D input plane (2-D data sets only).

    ``probabilities`` has shape (ny, nx, n_outputs); ``xs``/``ys`` are the
    grid coordinates in the *original* (unstandardized) input space.
    ``uncertainty`` is the MC-dropout standard deviation of the predicted
    class probability when requested, else None.
    """
    run_id: int
    step: int
    xs: np.ndarray
    ys: np.ndarray
    probabilities: np.ndarray
    uncertainty: np.ndarray | None = None


@dataclass(frozen=True)
class ConfusionReport:
    """Validation confusion matrix and misclassified examples (image data)."""
    run_id: int
    epoch: int
    matrix: np.ndarray         # (C, C) counts, rows = true class
    examples: np.ndarray       # (k, H, W) misclassified validation images, original scale
    true_labels: np.ndarray    # (k,)
    predicted: np.ndarray      # (k,)


@dataclass(frozen=True)
class RunFinished:
    """Last event of every run.

    status: "finished", "stopped", "early_stopped" or "diverged".
    ``weights`` are the final weights (for a diverged run: the last finite
    ones; with early stopping and restore_best: the best ones).
    """
    run_id: int
    status: str
    reason: str
    step: int
    epoch: int
    summary: dict
    weights: dict = field(repr=False)  # name -> read-only array


EVENT_TYPES = (RunStarted, Compiling, StepMetrics, EpochEnd, DecisionSurface,
               ConfusionReport, RunFinished)


# ------------------------------------------------------------------------------ orchestration
# What a job (:func:`engine.jobs.runner.run_job`) says around the runs it trains.  Every job
# starts with JobStarted and, unless it is aborted, ends with JobFinished; in between come the
# events of its kind: a single run's events above; a staged run's stage events
# (engine.spec.stages) around each phase's run events; a comparison's ComparisonRecord per
# finished run and one ComparisonFinished (trained in this process as a race: SubRun, DataPoints
# and each run's events before its record); a sweep's SweepRecord per finished run and one
# SweepFinished (as a race: SubRun and each run's events before its record, as for a comparison);
# an LR-finder sweep's LRFinderFinished.

JOB_KINDS = ("single", "staged", "compared", "sweep", "lr_find")


@dataclass(frozen=True)
class JobStarted:
    """First event of every job: what it is about to train, and where it writes."""
    kind: str                  # one of JOB_KINDS
    name: str                  # the experiment's name
    folder: str | None         # run folder (LR finder: the CSV file); None: nothing is written
    runs: int                  # trainings: variants x seeds, stages x seeds, 1 (0: an LR-finder sweep)
    variants: tuple = ()       # a comparison's variant names, a staged run's stage names
    seeds: tuple = ()
    workers: int = 1           # processes training at once


@dataclass(frozen=True)
class JobFinished:
    """Last event of every job that ran to its end (a stopped job ends too, with ``stopped``)."""
    kind: str
    folder: str | None
    stopped: bool


@dataclass(frozen=True)
class DataPoints:
    """A run's training points in the original input space (2-D classification data only,
    at most a few thousand), for drawing under the decision surface.  Comes before RunStarted."""
    run_id: int
    x: np.ndarray              # (n, 2) read-only
    y: np.ndarray              # (n,) class indices, read-only


@dataclass(frozen=True)
class WritingFiles:
    """A run has ended (``status`` at ``step``) and its folder's writer now writes the final file
    ``files[index]``; ``files`` holds (name, bytes) of each, in the order written.  One comes
    before each file, so a consumer can show the run's end at once and a large network's writing
    (seconds for hundreds of megabytes) as it goes.  The run's RunFinished follows once
    everything, ``summary.json`` last, is on disk."""
    run_id: int
    status: str
    step: int
    folder: str
    files: tuple               # ((file name, bytes), ...)
    index: int                 # the file being written now


@dataclass(frozen=True)
class SubRun:
    """A comparison trained in this process as a race goes on with its next run; that run's
    events (DataPoints, RunStarted ... RunFinished) follow, then its ComparisonRecord."""
    run_id: int                # the run_id of the events that follow
    title: str                 # "<variant> (seed <s>)"
    variant: str
    seed: int


@dataclass(frozen=True)
class RunDone:
    """One run of a comparison or sweep finished (in whatever order the executor finishes them).

    ``record`` is the run's result as :func:`engine.jobs.runs.train_run` returns it (variant, seed,
    folder, status, final and best metrics, steps to target, timings, hashes of its start, its
    per-epoch ``curve`` and per-record ``history``).  The runner never changes it after yielding
    it: consumers only read it.  Consumers match the subclasses: a comparison's and a sweep's
    records are summarized differently."""
    record: dict = field(repr=False)
    done: int                  # runs finished so far, this one included
    total: int


@dataclass(frozen=True)
class ComparisonRecord(RunDone):
    """One run of a comparison finished (see :class:`RunDone`)."""


@dataclass(frozen=True)
class SweepRecord(RunDone):
    """One run of a sweep finished (see :class:`RunDone`; ``record["variant"]`` is the trial's name)."""
    trial: int                 # the trial's index in the sweep (engine.spec.sweep.sweep_trials)


@dataclass(frozen=True)
class JobSummary:
    """Every run of a comparison or sweep is done (or stopped): the summary the job wrote, plus
    ``total_wall_seconds`` and ``workers``; ``folder`` is where (None: nothing was written)."""
    summary: dict = field(repr=False)
    folder: str | None


@dataclass(frozen=True)
class ComparisonFinished(JobSummary):
    """A comparison is done: the summary of comparison.json (:func:`engine.jobs.compare_report.summarize`)."""


@dataclass(frozen=True)
class SweepFinished(JobSummary):
    """A sweep is done: the summary of sweep.json (:func:`engine.jobs.sweep_report.summarize_sweep`)."""


@dataclass(frozen=True)
class LRFinderFinished:
    """The learning-rate finder's sweep is done: ``result`` is its
    :class:`engine.training.lr_finder.LRFinderResult` (read-only arrays)."""
    result: Any
    path: str | None           # the CSV it was written to, or None


@dataclass(frozen=True)
class RunFailed:
    """A job could not start or crashed (a consumer turns the exception into this event, so a
    window thread reports it instead of dying); ``message`` says why."""
    run_id: int
    message: str
