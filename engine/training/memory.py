"""What a training run will allocate, estimated before it allocates it.

The parameters are the least of it: a batch of B rows through U units in
all needs ``N_WS * B * U`` workspace values (activations, their gradients,
masks), evaluation and the diagnostics probe need their own workspaces, and
the optimizer keeps one to three slots per parameter.  A run of 10^6 rows
at batch 10^6 through one 100,000-unit layer has a small parameter count
and needs almost 2 TiB of workspace; it must be refused with that number,
not die with a ``MemoryError`` after its folder was created.

:func:`training_memory` lists every array a :class:`~engine.training.trainer.Trainer`
makes (sizes from the network's layout, the data's row count and the
experiment), :func:`check_training_memory` refuses the run when the total
exceeds :func:`engine.limits.memory_limit`, naming the largest parts and
what to shrink; :func:`feature_cache_memory` does the same for the cached
outputs of frozen layers (:mod:`engine.training.transfer`).
"""
from __future__ import annotations

import numpy as np

from engine.catalog.optimizers import make_optimizer
from engine.kernels import network as NK
from engine.limits import MemoryEstimate

EVAL_ROWS = 1024          # Network.predict / evaluate work through the data in batches of this many rows
TRAIN_EVAL_ROWS = 10_000  # the trainer measures training accuracy on at most this many rows
WORKSPACE_HINT = "use a smaller training.batch_size or fewer units"
PARAMETER_HINT = "use fewer or smaller layers"
DATA_HINT = "use fewer examples (or float32 instead of float64)"


def _workspace(rows: int, net) -> int:
    """Values of ``Network.workspace(rows)``: per-example rows, per-unit rows and the input batch."""
    return NK.N_WS * rows * net.total_units + NK.N_UWS * net.total_units + rows * net.n_inputs


def training_memory(net, experiment: dict, n_train: int, n_val: int = 0) -> MemoryEstimate:
    """Bytes of everything a Trainer of ``experiment`` on ``n_train`` training rows allocates
    besides the data set itself, part by part (see the module docstring)."""
    cfg = experiment["training"]
    size = net.dtype.itemsize
    params = int(net.theta.size) if hasattr(net, "theta") else net.n_params
    buffers = int(net.buffers.size) if hasattr(net, "buffers") else 0
    slots = len(make_optimizer(experiment["optimizer"]).slot_names)
    rows = max(1, min(int(cfg["batch_size"]), n_train))
    probe = max(1, min(int(cfg["probe_size"]), n_train))
    es = cfg.get("early_stopping")
    copies = 1 + int(bool(es and es.get("restore_best")))   # final weights (+ the best epoch's)
    parts = (
        ("training batch workspace", _workspace(rows, net) * size, WORKSPACE_HINT),
        ("evaluation workspace", _workspace(EVAL_ROWS, net) * size, WORKSPACE_HINT),
        ("probe workspace", _workspace(probe, net) * size, "use a smaller training.probe_size or fewer units"),
        ("parameters", (params + buffers) * size, PARAMETER_HINT),
        ("gradient and update copy", 2 * params * size, PARAMETER_HINT),
        ("optimizer slots", slots * params * size, PARAMETER_HINT),
        ("weight copies (final, best epoch, checkpoint)", (copies * (params + buffers) + slots * params) * size,
         PARAMETER_HINT),
        ("training data as the kernels read it", (n_train * net.n_inputs * size if net.dtype != np.float32 else 0)
         + (probe + min(TRAIN_EVAL_ROWS, n_train)) * net.n_inputs * size, DATA_HINT),
        ("validation outputs", n_val * net.n_outputs * 8, DATA_HINT),
    )
    return MemoryEstimate(parts)


def check_training_memory(net, experiment: dict, n_train: int, n_val: int = 0) -> None:
    """ExperimentError with the estimate, its largest parts and the limit when the run would not fit."""
    training_memory(net, experiment, n_train, n_val).check(
        f"training {experiment.get('name') or 'this experiment'!r} ({net.n_params:,} parameters, "
        f"{net.total_units:,} units, batches of {max(1, min(int(experiment['training']['batch_size']), n_train)):,} "
        f"rows)")


def feature_cache_memory(rows: int, units: int, dtype) -> MemoryEstimate:
    """The cached outputs of the frozen layers below a cut of ``units`` units, for ``rows`` examples."""
    return MemoryEstimate((("frozen-layer feature cache", rows * units * np.dtype(dtype).itemsize,
                            "cache fewer examples, or set the phase's cache to false"),))


def prediction_memory(net, rows: int, mc_samples: int = 0) -> MemoryEstimate:
    """Bytes a prediction of ``rows`` rows allocates: every Monte Carlo sample's outputs (they are
    kept to give the spread), the outputs and their CSV text, the inference workspace."""
    columns = 3 + net.n_outputs * (2 if mc_samples else 1)
    return MemoryEstimate((
        ("Monte Carlo dropout samples", mc_samples * rows * net.n_outputs * 8,
         "use fewer Monte Carlo passes (--mc-dropout) or predict fewer rows at a time"),
        ("outputs and their CSV text", rows * columns * 80, "predict fewer rows at a time"),
        ("inference workspace", _workspace(EVAL_ROWS, net) * net.dtype.itemsize, PARAMETER_HINT),
    ))
