"""Learning-rate schedules (book chapter 11, "Learning Rate Scheduling").

A schedule turns the optimizer's learning rate (``base_lr``, η0) into one
rate per training step.  The training loop calls ``start`` once, then asks
for chunks of rates with ``learning_rates(first_step, n)`` (0-based global
step numbers), and reports each epoch's validation loss through
``on_epoch_end``.  ``momenta`` returns the per-step value of the optimizer's
cycled hyperparameter (momentum or beta_1) for schedules that cycle it, else
None; the caller applies it only where ``optimizer.momentum_on``.  ``state_dict``/``load_state_dict`` carry whatever a resumed run needs
beyond the step number (only the performance schedule has any).

Throughout, t is the 0-based global step number (optimizer updates so far).
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, Mapping

import numpy as np

from engine.errors import ExperimentError
from engine.params import Param, check_params
from engine.registry import Registry

SCHEDULES: Registry[type["Schedule"]] = Registry("schedule")


def _register(cls):
    SCHEDULES.add(cls.name, cls)
    return cls


class Schedule:
    """Base class: a constant learning rate.  Subclasses override ``_rates``."""

    name: ClassVar[str]
    hyperparameters: ClassVar[dict[str, Param]] = {}

    def __init__(self, **params: Any):
        self.params: dict[str, Any] = check_params(self.hyperparameters, params, "schedule")
        self._validate()
        self.base_lr: float | None = None
        self.total_steps = 0
        self.steps_per_epoch = 1

    def _validate(self) -> None:
        """Checks that involve several parameters."""

    def start(self, base_lr: float, total_steps: int, steps_per_epoch: int) -> None:
        """Begin (or resume) a run of ``total_steps`` updates, ``steps_per_epoch`` per epoch."""
        if not (base_lr > 0 and math.isfinite(base_lr)):
            raise ValueError(f"base_lr must be a positive number, got {base_lr!r}")
        if total_steps < 0 or steps_per_epoch < 1:
            raise ValueError(f"need total_steps >= 0 and steps_per_epoch >= 1, "
                             f"got {total_steps} and {steps_per_epoch}")
        self.base_lr = float(base_lr)
        self.total_steps = int(total_steps)
        self.steps_per_epoch = int(steps_per_epoch)

    def _steps(self, first_step: int, n: int) -> np.ndarray:
        if self.base_lr is None:
            raise RuntimeError(f"schedule {self.name!r}: call start() before asking for rates")
        if first_step < 0 or n < 0:
            raise ValueError(f"need first_step >= 0 and n >= 0, got {first_step} and {n}")
        return np.arange(first_step, first_step + n, dtype=np.int64)

    def learning_rates(self, first_step: int, n: int) -> np.ndarray:
        """(n,) float64 learning rates for steps first_step .. first_step+n-1."""
        return np.asarray(self._rates(self._steps(first_step, n)), dtype=np.float64)

    def _rates(self, steps: np.ndarray) -> np.ndarray:
        return np.full(steps.shape, self.base_lr)

    def momenta(self, first_step: int, n: int) -> np.ndarray | None:
        """(n,) float64 values of the optimizer's cycled hyperparameter, or None."""
        return None

    def on_epoch_end(self, epoch: int, val_loss: float) -> None:
        """Called after each epoch with its validation loss."""

    def get_config(self) -> dict:
        """JSON-able; ``make_schedule(get_config())`` rebuilds an equal schedule."""
        return {"name": self.name, **self.params}

    def state_dict(self) -> dict:
        """JSON-able run state beyond the step number (empty for pure functions of t)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"


@_register
class Constant(Schedule):
    """η(t) = η0 at every step."""

    name = "constant"


@_register
class Piecewise(Schedule):
    """Predetermined piecewise constant rates (book: e.g. η0 = 0.1, then 0.001
    after 50 epochs).

    η0 (the optimizer's learning rate) applies until the first boundary;
    ``values[i]`` applies from ``boundaries[i]`` on (t >= boundary, counted
    in ``unit``).  So the book's example is boundaries [50], values [0.001].
    """

    name = "piecewise"
    hyperparameters = {
        "boundaries": Param([], "Where the rate changes, in units of `unit`, strictly increasing; "
                                "default [] (constant).", kind="ints", low=0),
        "values": Param([], "The learning rate from each boundary on (one per boundary); "
                            "before the first boundary the optimizer's rate applies.",
                        kind="floats", low=0.0, low_open=True),
        "unit": Param("epoch", "Whether boundaries count epochs or optimizer steps.",
                      kind="choice", choices=("epoch", "step")),
    }

    def _validate(self):
        bounds, values = self.params["boundaries"], self.params["values"]
        if any(b >= c for b, c in zip(bounds, bounds[1:])):
            raise ExperimentError(f"schedule.boundaries must be strictly increasing, got {bounds}")
        if len(values) != len(bounds):
            raise ExperimentError(f"schedule.values must hold one learning rate per boundary: "
                                  f"{len(bounds)} boundaries, got {len(values)} values")

    def _rates(self, steps):
        t = steps // self.steps_per_epoch if self.params["unit"] == "epoch" else steps
        table = np.array([self.base_lr] + list(self.params["values"]), dtype=np.float64)
        index = np.searchsorted(np.asarray(self.params["boundaries"], dtype=np.int64), t, side="right")
        return table[index]


@_register
class Exponential(Schedule):
    """Exponential scheduling: η(t) = η0 · 0.1^(t / s); the rate drops tenfold every s steps."""

    name = "exponential"
    hyperparameters = {
        "s": Param(10000.0, "Steps (optimizer updates, not epochs) for the rate to drop tenfold; "
                            "default 10000.", low=0.0, low_open=True, log=True),
    }

    def _rates(self, steps):
        return self.base_lr * 0.1 ** (steps / self.params["s"])


@_register
class Power(Schedule):
    """Power scheduling: η(t) = η0 · (1 + t / s)^(-c); slower than exponential."""

    name = "power"
    hyperparameters = {
        "s": Param(10000.0, "Steps (optimizer updates) after which the rate is η0 / 2^c; "
                            "default 10000.", low=0.0, low_open=True, log=True),
        "c": Param(1.0, "Exponent c (the book's typical value is 1).", low=0.0, low_open=True),
    }

    def _rates(self, steps):
        return self.base_lr * (1.0 + steps / self.params["s"]) ** -self.params["c"]


@_register
class Performance(Schedule):
    """Performance scheduling (like Keras' ReduceLROnPlateau): multiply the
    rate by ``factor`` once the validation loss has gone ``patience``
    epochs without improving on its best by more than ``min_delta``; the
    count then restarts.  The rate never drops below ``min_lr`` through a
    reduction.  A NaN loss counts as no improvement (pass the training loss
    if there is no validation set).
    """

    name = "performance"
    hyperparameters = {
        "factor": Param(0.5, "Multiplier applied to the rate at each reduction; default 0.5.",
                        low=0.0, high=1.0, low_open=True, high_open=True),
        "patience": Param(5, "Epochs without improvement before a reduction; default 5.",
                          kind="int", low=1),
        "min_delta": Param(1e-4, "Smallest decrease of the validation loss that counts as "
                                 "an improvement (absolute); default 1e-4 as in Keras.", low=0.0),
        "min_lr": Param(0.0, "Floor for reductions (absolute learning rate); default 0.", low=0.0),
    }

    def __init__(self, **params):
        super().__init__(**params)
        self.best = math.inf
        self.wait = 0
        self.scale = 1.0  # current rate = base_lr * scale

    def _rates(self, steps):
        return np.full(steps.shape, self.base_lr * self.scale)

    def on_epoch_end(self, epoch, val_loss):
        p = self.params
        if val_loss < self.best - p["min_delta"]:  # False for NaN
            self.best = float(val_loss)
            self.wait = 0
            return
        self.wait += 1
        if self.wait >= p["patience"]:
            self.wait = 0
            current = self.base_lr * self.scale
            reduced = max(current * p["factor"], p["min_lr"])
            if reduced < current:
                self.scale = reduced / self.base_lr

    def state_dict(self):
        # JSON has no infinity: "no best yet" is null
        return {"best": None if math.isinf(self.best) else self.best,
                "wait": self.wait, "scale": self.scale}

    def load_state_dict(self, state):
        best = state.get("best")
        self.best = math.inf if best is None else float(best)
        self.wait = int(state["wait"])
        self.scale = float(state["scale"])


@_register
class OneCycle(Schedule):
    """Leslie Smith's 1cycle policy as the book describes it.

    With T total steps, C = (1 - anneal_fraction) · T and H = C / 2:
      0 <= t < H:  rate rises linearly from max_lr / div_factor to max_lr;
      H <= t < C:  it falls linearly back to max_lr / div_factor;
      C <= t < T:  it anneals linearly to max_lr / div_factor / final_div_factor,
                   reached exactly at the last step t = T - 1, and stays there.
    The momentum moves the opposite way: max_momentum -> min_momentum at H ->
    max_momentum at C, and stays at max_momentum during the final anneal.

    Which momentum is cycled: the optimizer's momentum term, only where it has
    one and it is on (``Optimizer.momentum_on``): momentum and Nesterov with
    momentum > 0, RMSProp with momentum > 0, and beta_1 of Adam, Nadam, AdamW
    and AdaMax when beta_1 > 0 (their running mean of gradients is a momentum
    term, and torch.optim.lr_scheduler.OneCycleLR and fastai's fit_one_cycle
    both cycle beta_1).  SGD, AdaGrad, FTRL, and RMSProp or momentum at 0 keep
    their settings: a term the user switched off is not switched on.  This is
    fastai's behaviour (its SGD and RMSProp with mom=0 build no momentum step,
    so the cycled value is never read); torch's OneCycleLR instead writes the
    cycle into any optimizer that has a momentum setting, even at 0, which for
    RMSProp turns on a momentum of 0.85-0.95.  Keras ships no 1cycle
    schedule.  ``cycle_momentum`` false leaves the momentum alone everywhere.
    """

    name = "onecycle"
    hyperparameters = {
        "max_lr": Param(None, "Peak learning rate, reached mid-cycle; null = the optimizer's "
                              "learning rate.", low=0.0, low_open=True, optional=True, log=True),
        "div_factor": Param(10.0, "The cycle starts and ends at max_lr / div_factor; default 10.",
                            low=1.0),
        "final_div_factor": Param(1000.0, "The final anneal ends at the starting rate divided by "
                                          "this; default 1000.", low=1.0, log=True),
        "anneal_fraction": Param(0.1, "Fraction of all steps spent in the final anneal; default 0.1.",
                                 low=0.0, high=1.0, high_open=True),
        "max_momentum": Param(0.95, "Momentum at both ends of the cycle; default 0.95.",
                              low=0.0, high=1.0, high_open=True),
        "min_momentum": Param(0.85, "Momentum at the peak learning rate; default 0.85.",
                              low=0.0, high=1.0, high_open=True),
        "cycle_momentum": Param(True, "Cycle the optimizer's momentum (Adam family: β1) against the rate, "
                                      "only where it has one that is on (> 0); false = leave it alone.",
                                kind="bool"),
    }

    def _validate(self):
        if self.params["min_momentum"] > self.params["max_momentum"]:
            raise ExperimentError(f"schedule.min_momentum must be <= max_momentum "
                                  f"({self.params['max_momentum']}), got {self.params['min_momentum']}")

    def start(self, base_lr, total_steps, steps_per_epoch):
        super().start(base_lr, total_steps, steps_per_epoch)
        if total_steps < 1:
            raise ExperimentError("schedule onecycle needs a known, positive number of training steps")

    def _phases(self, steps):
        t = steps.astype(np.float64)
        cycle_end = (1.0 - self.params["anneal_fraction"]) * self.total_steps
        half = cycle_end / 2.0
        rising = t < half
        falling = ~rising & (t < cycle_end)
        annealing = (t >= cycle_end) & (t < self.total_steps)
        up = t / half
        down = (t - half) / half
        # ends at T - 1 so that the last update uses the final rate
        anneal_length = self.total_steps - 1 - cycle_end
        anneal = (t - cycle_end) / anneal_length if anneal_length > 0 else np.ones_like(t)
        return rising, falling, annealing, up, down, anneal

    def _rates(self, steps):
        peak = self.params["max_lr"] or self.base_lr
        low = peak / self.params["div_factor"]
        final = low / self.params["final_div_factor"]
        rising, falling, annealing, up, down, anneal = self._phases(steps)
        rates = np.full(steps.shape, final)
        rates = np.where(rising, low + (peak - low) * up, rates)
        rates = np.where(falling, peak + (low - peak) * down, rates)
        return np.where(annealing, low + (final - low) * anneal, rates)

    def momenta(self, first_step, n):
        if not self.params["cycle_momentum"]:
            return None
        steps = self._steps(first_step, n)
        hi, lo = self.params["max_momentum"], self.params["min_momentum"]
        rising, falling, _, up, down, _ = self._phases(steps)
        values = np.full(steps.shape, hi)
        values = np.where(rising, hi + (lo - hi) * up, values)
        return np.where(falling, lo + (hi - lo) * down, values)


def make_schedule(config: Mapping[str, Any] | None) -> Schedule:
    """Build a schedule from the experiment's "schedule" section, e.g.
    ``{"name": "exponential", "s": 5000}``; None means constant."""
    if config is None:
        return Constant()
    if not isinstance(config, Mapping):
        raise ExperimentError(f"schedule must be an object, got {config!r}")
    if "name" not in config:
        raise ExperimentError(f"schedule.name is missing; allowed: {', '.join(SCHEDULES.names())}")
    cls = SCHEDULES.get(config["name"])
    return cls(**{k: v for k, v in config.items() if k != "name"})
