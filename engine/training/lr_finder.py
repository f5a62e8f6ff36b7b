"""The learning-rate finder: an exponential sweep that shows where training breaks.

Starting from the network's current weights, train for one epoch (or
``steps`` steps) while the learning rate grows exponentially from ``min_lr``
to ``max_lr``; record the training loss of every step.  The loss first
barely moves (rate too small), then falls, then shoots up (rate too large).
The sweep stops early once the smoothed loss exceeds ``stop_factor`` times
its lowest value (or becomes NaN).  Afterwards everything is put back as it
was: weights, BN statistics, optimizer state, step counters and random
streams, so the finder can be run on a fresh or a half-trained network.

The suggestion follows the book (chapter 11, "Learning Rate Scheduling"): the
loss falls, then turns and climbs; a good learning rate lies well below that
turning point, about ten times lower.  Here the turning point (``turning_lr``)
is the rate of the lowest smoothed loss, the last rate before the loss climbs,
and the suggestion is ``suggested_lr = turning_lr / 10`` (:data:`RULE`).  The
suggestion is what the finder hands on (:func:`apply_suggestion`): as the
optimizer's constant rate, or as a 1cycle schedule's peak rate, which the book
picks the same way (the cycle then starts div_factor times lower).  The rate
where the smoothed loss falls fastest (``steepest_lr``) is reported too.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np

from engine.catalog.schedules import Schedule
from engine.spec.lr_finder import FINDER_PARAMS, MIN_STEPS
from engine.spec.overrides import apply_overrides
from engine.training.trainer import Trainer


RULE = "suggested rate = turning point / 10 (turning point: the lowest smoothed loss, where the loss starts to climb)"


@dataclass(frozen=True)
class LRFinderResult:
    lrs: np.ndarray            # (k,) learning rate of each step of the sweep
    losses: np.ndarray         # (k,) training loss of each step
    smoothed: np.ndarray       # (k,) bias-corrected exponential moving average of the losses
    suggested_lr: float        # turning_lr / 10: the rate the finder hands on (RULE)
    turning_lr: float          # where the smoothed loss is lowest, just before it climbs
    steepest_lr: float         # where the smoothed loss falls fastest per log-step of lr
    stopped_early: bool        # the loss blew up (or became NaN) before max_lr
    rule: str = RULE           # how suggested_lr follows from the sweep, in words

    def markers(self) -> dict[str, tuple[float, float]]:
        """The two points a plot of smoothed loss against rate marks, by label: (rate, smoothed
        loss there, read off the curve on a log-rate axis).  Empty when the sweep found none."""
        if not (math.isfinite(self.turning_lr) and self.lrs.size):
            return {}
        log_lrs = np.log(self.lrs)
        return {label: (lr, float(np.interp(math.log(lr), log_lrs, self.smoothed)))
                for label, lr in (("turning point", self.turning_lr),
                                  ("suggested (turning point / 10)", self.suggested_lr))}


class _Sweep(Schedule):
    name = "lr_finder_sweep"

    def __init__(self, min_lr: float, max_lr: float, steps: int, first_step: int):
        super().__init__()
        self.min_lr, self.max_lr, self.n, self.first = min_lr, max_lr, steps, first_step

    def _rates(self, steps):
        k = (steps - self.first).astype(np.float64)
        frac = k / max(1, self.n - 1)
        return self.min_lr * (self.max_lr / self.min_lr) ** frac


def _smooth(losses: np.ndarray, beta: float) -> np.ndarray:
    out = np.empty_like(losses)
    avg = 0.0
    for i, x in enumerate(losses):
        avg = beta * avg + (1 - beta) * x
        out[i] = avg / (1 - beta ** (i + 1)) if beta > 0 else x
    return out


def find_learning_rate(trainer_or_experiment, min_lr: float = FINDER_PARAMS["min_lr"].default,
                       max_lr: float = FINDER_PARAMS["max_lr"].default,
                       steps: int | None = FINDER_PARAMS["steps"].default,
                       smoothing: float = FINDER_PARAMS["smoothing"].default,
                       stop_factor: float = FINDER_PARAMS["stop_factor"].default) -> LRFinderResult:
    """Run the sweep on a :class:`~engine.training.trainer.Trainer` (or a resolved
    experiment, for which a fresh trainer is built) and restore it afterwards.
    The defaults are those of :data:`engine.spec.lr_finder.FINDER_PARAMS`.
    """
    trainer = trainer_or_experiment
    if isinstance(trainer_or_experiment, dict):
        trainer = Trainer(trainer_or_experiment)
    if not (0 < min_lr < max_lr):
        raise ValueError(f"need 0 < min_lr < max_lr, got {min_lr} and {max_lr}")
    n = steps if steps is not None else max(MIN_STEPS, trainer.steps_per_epoch)
    net = trainer.net
    saved = {
        "theta": net.theta.copy(), "buffers": net.buffers.copy(), "slots": trainer.opt_state.slots.copy(),
        "opt_step": trainer.opt_state.step, "step": trainer.step, "epoch": trainer.epoch,
        "rng": trainer.rng.copy(), "shuffle": copy.deepcopy(trainer.shuffle_rng.bit_generator.state),
        "schedule": trainer.schedule, "stats": trainer.layer_stats.copy(),
    }
    sweep = _Sweep(min_lr, max_lr, n, trainer.step)
    sweep.start(min_lr, trainer.step + n, trainer.steps_per_epoch)
    trainer.schedule = sweep
    lrs, losses = [], []
    stopped = False
    best = math.inf
    try:
        done_total = 0
        while done_total < n and not stopped:
            order, starts = trainer._epoch_order()
            batch = 0
            while batch < trainer.steps_per_epoch and done_total < n:
                chunk = min(trainer.steps_per_epoch - batch, n - done_total, 64)
                done, step_losses, _, step_lrs, _ = trainer.run_steps(order, starts, batch, chunk)
                batch += done
                done_total += done
                lrs.extend(step_lrs.tolist())
                losses.extend(step_losses.tolist())
                if trainer.chunk_diverged:   # NaN/inf: the rate is far too large
                    stopped = True
                    break
                sm = _smooth(np.asarray(losses), smoothing)
                best = min(best, float(np.nanmin(sm)))
                if sm[-1] > stop_factor * best:
                    lowest = int(np.nanargmin(sm))
                    cut = lowest + int(np.argmax(sm[lowest:] > stop_factor * best))
                    lrs, losses = lrs[:cut + 1], losses[:cut + 1]
                    stopped = True
                    break
    finally:
        net.theta[...] = saved["theta"]
        net.buffers[...] = saved["buffers"]
        trainer.opt_state.slots[...] = saved["slots"]
        trainer.opt_state.step = saved["opt_step"]
        trainer.step, trainer.epoch = saved["step"], saved["epoch"]
        trainer.rng[...] = saved["rng"]
        trainer.shuffle_rng.bit_generator.state = saved["shuffle"]
        trainer.schedule = saved["schedule"]
        trainer.layer_stats[...] = saved["stats"]
    lrs_a = np.asarray(lrs, dtype=np.float64)
    loss_a = np.asarray(losses, dtype=np.float64)
    sm = _smooth(loss_a, smoothing) if loss_a.size else loss_a
    return _result(lrs_a, loss_a, sm, stopped)


def _result(lrs, losses, sm, stopped) -> LRFinderResult:
    finite = np.isfinite(sm)
    if not finite.any():
        return LRFinderResult(lrs, losses, sm, math.nan, math.nan, math.nan, stopped)
    i_min = int(np.nanargmin(np.where(finite, sm, np.inf)))
    turning = float(lrs[i_min])
    # steepest descent of the smoothed loss per unit of log(lr), before the minimum
    # (the first tenth of the sweep is skipped: the moving average is still settling there)
    steepest = turning
    skip = max(1, len(sm) // 10)
    if i_min - skip >= 2:
        part = slice(skip, i_min + 1)
        slope = np.gradient(sm[part], np.log(lrs[part]))
        steepest = float(lrs[part][int(np.argmin(slope))])
    return LRFinderResult(lrs, losses, sm, turning / 10.0, turning, steepest, stopped)


def chosen_rate(experiment: dict, result: LRFinderResult) -> float:
    """The rate :func:`apply_suggestion` uses: the suggestion, ten times below the
    turning point, for any schedule (the book picks 1cycle's peak rate like a
    constant rate; the peak used to be the turning point itself, which is the
    rate where the loss is about to climb)."""
    return float(result.suggested_lr)


def apply_suggestion(experiment: dict, result: LRFinderResult) -> dict:
    """The experiment with the finder's suggestion put to use: as the peak rate of a
    1cycle schedule, else as the optimizer's learning rate."""
    lr = chosen_rate(experiment, result)
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"the learning-rate finder found no usable rate ({lr})")
    if experiment["schedule"]["name"] == "onecycle":
        return apply_overrides(experiment, {"schedule": {"max_lr": lr}})
    return apply_overrides(experiment, {"optimizer": {"learning_rate": lr}})
