"""Early stopping: end training once the validation metric stops improving.

The rule, as the chapter's Keras ``EarlyStopping`` callback states it: after
every epoch, compare the monitored metric with the best value so far; an
epoch improves on it when it is better by more than ``min_delta``.  Each
epoch without improvement adds one to a counter (``wait``), an improvement
resets it.  Training stops when ``wait >= patience``, i.e. at the
``patience``-th epoch in a row without improvement, as Keras does (and as the
performance schedule counts; patience 0 stops at the first epoch without
improvement, like patience 1).  ``min_delta`` is a size, never negative: a
loss must fall, an accuracy rise, by more than it.  A NaN value never improves
(Keras takes a NaN first value as its best; here it counts as a miss).  With
``restore_best`` the run ends with the weights of the best epoch.

The metric must exist: watching the validation loss without validation data,
or the validation accuracy of a regression, is refused before training
(:func:`check_watchable`) instead of ending at "best at epoch 0".

The state (best value, its epoch, the counter, the best weights) is what a
checkpoint saves so a resumed run stops at the same epoch as one that was
never interrupted: :meth:`EarlyStopping.state_dict` holds the counters as
JSON, the best weights go into the checkpoint's tensors under
:data:`BEST_WEIGHTS_PREFIX`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from engine.errors import ExperimentError

BEST_WEIGHTS_PREFIX = "early_stopping.best."   # checkpoint tensor names of the best epoch's weights
HIGHER_IS_BETTER = {"val_loss": False, "val_accuracy": True}
ACCURACY_TASKS = ("classification", "binary")   # the tasks whose evaluation has an accuracy


@dataclass(frozen=True)
class Decision:
    """What one epoch's metric means for the run."""
    improved: bool   # the epoch is the new best
    stop: bool       # patience is used up
    reason: str      # why the run stops ("" when it goes on)


class EarlyStopping:
    """The rule above for one run; ``update`` once per finished epoch."""

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 restore_best: bool = True):
        if monitor not in HIGHER_IS_BETTER:
            raise ValueError(f"early stopping monitors one of {', '.join(HIGHER_IS_BETTER)}, not {monitor!r}")
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.restore_best = bool(restore_best)
        self._sign = -1.0 if HIGHER_IS_BETTER[monitor] else 1.0
        self.best_value = math.inf   # best score so far as a loss: the metric, negated for an accuracy
        self.best_epoch = 0
        self.wait = 0                # epochs since the best one
        self.best_weights: dict[str, np.ndarray] | None = None   # with restore_best: the best epoch's

    @classmethod
    def from_config(cls, config: Mapping | None) -> EarlyStopping | None:
        """From the experiment's ``training.early_stopping`` section (None: off)."""
        if config is None:
            return None
        return cls(config["monitor"], config["patience"], config["min_delta"], config["restore_best"])

    def update(self, epoch: int, metrics: Mapping[str, float],
               weights: Callable[[], dict[str, np.ndarray]] | None = None) -> Decision:
        """Take the metrics of the epoch that just ended (``metrics[monitor]``;
        NaN never improves).  ``weights`` is called for a new best when
        ``restore_best`` is on, and its result kept."""
        value = self._sign * metrics[self.monitor]
        if value < self.best_value - self.min_delta:
            self.best_value, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best and weights is not None:
                self.best_weights = weights()
            return Decision(True, False, "")
        self.wait += 1
        if self.wait >= self.patience:
            return Decision(False, True, f"{self.monitor} did not improve for {self.wait} "
                                         f"epoch{'s' if self.wait != 1 else ''} (best at epoch {self.best_epoch})")
        return Decision(False, False, "")

    def check_watchable(self, n_val: int, task: str) -> None:
        """Refuse a monitor the data cannot give: no validation rows, or an accuracy of a task
        that has none (regression, reconstruction)."""
        key = "training.early_stopping.monitor"
        if n_val == 0:
            raise ExperimentError(f"{key} = {self.monitor!r}, but the data have no validation set: early stopping "
                                  f"would have nothing to watch; give the data a validation split or remove "
                                  f"training.early_stopping")
        if self.monitor == "val_accuracy" and task not in ACCURACY_TASKS:
            raise ExperimentError(f"{key} = 'val_accuracy', but a {task} task has no accuracy; "
                                  f"monitor 'val_loss' instead")

    def state_dict(self) -> dict:
        """The counters as JSON (an infinite best value as null); the best
        weights are saved beside them as tensors (:data:`BEST_WEIGHTS_PREFIX`)."""
        return {"best_value": None if math.isinf(self.best_value) else self.best_value,
                "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: Mapping) -> None:
        """Continue counting from :meth:`state_dict`'s output."""
        best = state["best_value"]
        self.best_value = math.inf if best is None else float(best)
        self.best_epoch = int(state["best_epoch"])
        self.wait = int(state["wait"])
