"""Run checkpoints: weights plus everything needed to resume a run exactly.

``checkpoint.npz`` in a run folder holds the tensors of
:meth:`engine.training.trainer.Trainer.checkpoint` (the weights under their usual
names, ``optimizer.slots`` (k, n_params) and, with early stopping,
``early_stopping.best.<name>``, see :mod:`engine.training.early_stopping`) and,
in its ``__metadata__`` JSON entry, the counters, RNG states, schedule and
early-stopping state (:meth:`~engine.training.early_stopping.EarlyStopping.state_dict`),
the position inside the current epoch, the experiment and the run's status.  Plain NPZ, no pickle.

``python main.py run EXPERIMENT --resume RUN_DIR`` rebuilds the trainer for
EXPERIMENT (which must agree with the checkpoint's on everything that shapes
the weights: seed, data, model, loss, optimizer, schedule, batch size,
shuffling, dtype; epochs and step limits may change) and continues; the final
weights equal those of a run that was never interrupted, bit for bit.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine import __version__
from engine.errors import WeightsError
from engine.formats.common import NAME_RE
from engine.formats.weights import load_npz, save_npz
from engine.training.trainer import Trainer
from engine.formats.runfolder import run_checkpoint_file
from engine.formats.runlayout import CHECKPOINT_FILE
from engine.training.early_stopping import BEST_WEIGHTS_PREFIX

CHECKPOINT_NAME = CHECKPOINT_FILE   # where a run folder keeps it
CHECKPOINT_FORMAT = "descent-checkpoint"
MUST_MATCH = ("seed", "data", "model", "loss", "optimizer", "schedule",
              "training.batch_size", "training.shuffle", "training.dtype")
NOT_RESUMABLE = {"diverged": "it diverged (resuming would diverge again at the same step)",
                 "early_stopped": "early stopping ended it (its weights are the best epoch's, not the last)"}


def save_checkpoint(path, checkpoint: dict, experiment: dict, status: str = "stopped",
                    app_version: str | None = None) -> Path:
    meta = {"format": CHECKPOINT_FORMAT, "format_version": 1, "app_version": app_version or __version__,
            "status": status, "experiment": experiment, "state": checkpoint["state"]}
    return save_npz(path, checkpoint["tensors"], meta)


def load_checkpoint(path) -> tuple[dict, dict]:
    """({"tensors", "state"}, metadata) from a checkpoint file; WeightsError if unusable."""
    path = Path(path)
    try:
        tensors, meta = load_npz(path)
    except WeightsError:
        raise
    except Exception as exc:  # damaged member, crafted header, ...
        raise WeightsError(f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT or not isinstance(meta.get("state"), dict):
        raise WeightsError(f"{path} is not a Descent checkpoint (no '{CHECKPOINT_FORMAT}' metadata)")
    if "optimizer.slots" not in tensors:
        raise WeightsError(f"{path} has no optimizer.slots tensor; it cannot resume a run")
    for name, value in tensors.items():
        weight = name[len(BEST_WEIGHTS_PREFIX):] if name.startswith(BEST_WEIGHTS_PREFIX) else name
        if name != "optimizer.slots" and not NAME_RE.match(weight):
            raise WeightsError(f"{path}: unexpected tensor {name!r} in a checkpoint")
        if not np.all(np.isfinite(value)):
            raise WeightsError(f"{path}: tensor {name!r} holds NaN or infinite values")
    return {"tensors": tensors, "state": meta["state"]}, meta


def _get(experiment: dict, dotted: str):
    value = experiment
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _first_difference(a, b, where: str) -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            found = _first_difference(a.get(key), b.get(key), f"{where}.{key}")
            if found:
                return found
        return None
    return None if a == b else where


def check_resumable(saved: dict, experiment: dict, source) -> None:
    for key in MUST_MATCH:
        where = _first_difference(_get(saved, key), _get(experiment, key), key)
        if where:
            raise WeightsError(f"cannot resume {source} with this experiment: {where} is "
                               f"{_get(experiment, where)!r} here but {_get(saved, where)!r} in the checkpoint; "
                               f"only epochs, step limits and logging may change")


def resume_trainer(run_dir, experiment: dict, **trainer_options):
    """A :class:`~engine.training.trainer.Trainer` for ``experiment`` restored from
    ``run_dir``'s checkpoint; its ``run()`` continues the interrupted run."""
    run_dir = Path(run_dir)
    path = run_checkpoint_file(run_dir)
    checkpoint, meta = load_checkpoint(path)
    status = meta.get("status")
    if status in NOT_RESUMABLE:
        raise WeightsError(f"{run_dir} cannot be resumed: {NOT_RESUMABLE[status]}")
    if isinstance(meta.get("experiment"), dict):
        check_resumable(meta["experiment"], experiment, run_dir)
    trainer = Trainer(experiment, **trainer_options)
    try:
        trainer.restore(checkpoint)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, WeightsError):
            raise
        raise WeightsError(f"{path}: checkpoint state is incomplete or damaged ({type(exc).__name__}: {exc})") from None
    return trainer
