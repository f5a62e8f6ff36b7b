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
    dead_fraction: np.ndarray  # (L,) NaN for non-ReLU-family layers
    dead_count: np.ndarray     # (L,)
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
