"""Optimizers: configuration, validation and state around the update kernels.

Keras-3 style: an optimizer object holds only its configuration; ``build``
returns the per-run state (slots and step count) and ``update_step`` applies
one update through the compiled kernel of :mod:`engine.kernels.optim`.

Where the book's Equations 11-4 to 11-8 or the original papers leave a
choice (where epsilon sits, how momentum meets the learning rate, bias
correction, Nesterov's formulation, initial accumulators) the classes do what
torch.optim does; FTRL, which torch lacks, follows keras.optimizers.Ftrl.
Each class docstring states the exact update.  Notation: g is the gradient,
lr the learning rate of this step, t the 1-based step number, and
operations on vectors are element-wise.

Variants are flags on one class, not copies: "nesterov" is :class:`Momentum`
with the Nesterov flag set (``fixed_hyper``); "nadam" is :class:`Adam` with
the same flag; "adamw" is :class:`Adam` plus a decoupled ``weight_decay``.

An entry carries everything that is particular to it: its display title, the
kernel it runs, its state rows, its hyperparameters and where each one sits
in the kernel's hyper array (``hyper_slots``, naming the ``H_*`` columns of
:mod:`engine.kernels.optim`).  Nothing else in the program lists optimizers:
adding one is its kernel plus one class registered here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Mapping

import numpy as np

from engine.errors import ExperimentError
from engine.kernels import optim
from engine.params import Param, check_params
from engine.registry import Registry

OPTIMIZERS: Registry[type["Optimizer"]] = Registry("optimizer")

# Gradient clipping settings live in the experiment's "optimizer" section but
# are applied by the training loop (kernels.optim.clip_gradients), not here.
CLIP_KEYS = ("clipvalue", "clipnorm", "global_clipnorm")


def _unit_interval(default: float, doc: str) -> Param:
    return Param(default, doc, low=0.0, high=1.0, high_open=True)


def _epsilon(default: float) -> Param:
    return Param(default, "Small constant added to the denominator to avoid division by zero.",
                 low=0.0, low_open=True, log=True)


def _non_negative(default: float, doc: str) -> Param:
    return Param(default, doc, low=0.0)


@dataclass
class OptimizerState:
    """Per-run optimizer state.

    slots: (k, n) array of theta's dtype, one row per name in the
    optimizer's ``slot_names``; step: number of updates applied so far.
    """

    slots: np.ndarray
    step: int = 0


class Optimizer:
    """Base class.  Subclasses set the class attributes below.

    ``hyper_slots`` maps each hyperparameter the kernel reads to its column of
    the kernel's hyper array (``optim.H_*``; booleans become 1.0 / 0.0);
    ``fixed_hyper`` sets columns that a variant fixes (Nesterov's flag).
    Hyperparameters without a slot are used here, not by the kernel
    (initial accumulator values).  ``cycled``, the hyperparameter a 1cycle
    schedule may replace step by step, is whichever one sits in the
    H_MOMENTUM column, because that is the column the training loop writes;
    the schedule replaces it only where :attr:`momentum_on` (see
    :class:`engine.catalog.schedules.OneCycle`).
    """

    name: ClassVar[str]
    title: ClassVar[str]        # display name: pickers, the arena's table and legend
    kernel_code: ClassVar[int]
    kernel: ClassVar[Callable]
    slot_names: ClassVar[tuple[str, ...]] = ()
    hyperparameters: ClassVar[dict[str, Param]] = {}
    hyper_slots: ClassVar[dict[str, int]] = {}
    fixed_hyper: ClassVar[dict[int, float]] = {}
    default_learning_rate: ClassVar[float] = 0.01
    cycled: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.cycled = next((key for key, column in cls.hyper_slots.items() if column == optim.H_MOMENTUM), None)

    def __init__(self, learning_rate: float | None = None, **hyper: Any):
        lr_param = self.learning_rate_param()
        self.learning_rate: float = (lr_param.default if learning_rate is None
                                     else lr_param.check(learning_rate, "optimizer.learning_rate"))
        self.hyper: dict[str, Any] = check_params(self.hyperparameters, hyper, "optimizer",
                                                  ignore=("learning_rate",))
        self._hyper = np.zeros(optim.HYPER_SIZE, dtype=np.float64)
        for key, column in self.hyper_slots.items():
            self._hyper[column] = float(self.hyper[key])
        for column, value in self.fixed_hyper.items():
            self._hyper[column] = float(value)

    @property
    def momentum_on(self) -> bool:
        """Whether this optimizer has a momentum term (``cycled``: momentum, or the Adam family's
        beta_1) and it is switched on (> 0).  Only then does a 1cycle schedule cycle it: writing
        0.85-0.95 into RMSProp's momentum 0 would add a momentum the user did not ask for."""
        return self.cycled is not None and float(self.hyper[self.cycled]) > 0.0

    @classmethod
    def learning_rate_param(cls) -> Param:
        return Param(cls.default_learning_rate, "Learning rate η: the step size of each update.",
                     low=0.0, low_open=True, log=True)

    def hyper_array(self) -> np.ndarray:
        """(HYPER_SIZE,) float64 copy of the kernel's hyperparameters; column
        H_MOMENTUM holds the ``cycled`` hyperparameter (if any), which a
        caller may override."""
        return self._hyper.copy()

    def get_config(self) -> dict:
        """JSON-able; ``make_optimizer(get_config())`` rebuilds an equal optimizer."""
        return {"name": self.name, "learning_rate": self.learning_rate, **self.hyper}

    def build(self, n: int, dtype=np.float64) -> OptimizerState:
        """Fresh state for a flat parameter vector of ``n`` entries."""
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"optimizer state dtype must be float32 or float64, got {dtype}")
        slots = np.zeros((len(self.slot_names), int(n)), dtype=dtype)
        self._initialize_slots(slots)
        return OptimizerState(slots=slots, step=0)

    def _initialize_slots(self, slots: np.ndarray) -> None:
        """Hook for optimizers whose accumulators do not start at zero."""

    def update_step(self, theta: np.ndarray, grad: np.ndarray, state: OptimizerState,
                    lr: float | None = None, ranges: Iterable[tuple[int, int]] | None = None,
                    cycled_value: float | None = None) -> None:
        """Apply one update in place to theta (n,) and state.slots (k, n).

        Increments ``state.step`` once, then runs the kernel on every
        ``(lo, hi)`` of ``ranges`` (default: the whole vector); entries
        outside the ranges and their slots are left as they are.  ``lr``
        defaults to the configured learning rate; ``cycled_value``, if
        given, replaces the ``cycled`` hyperparameter for this step only.
        """
        n = self._check_arrays(theta, grad, state)
        spans = [(0, n)] if ranges is None else [(int(lo), int(hi)) for lo, hi in ranges]
        for lo, hi in spans:
            if not 0 <= lo <= hi <= n:
                raise ValueError(f"update range ({lo}, {hi}) is outside 0..{n}")
        hyper = self._hyper
        if cycled_value is not None:
            hyper = hyper.copy()
            hyper[optim.H_MOMENTUM] = float(cycled_value)
        state.step += 1
        step_lr = self.learning_rate if lr is None else float(lr)
        for lo, hi in spans:
            self.kernel(theta, grad, state.slots, lo, hi, state.step, step_lr, hyper)

    def _check_arrays(self, theta, grad, state) -> int:
        if theta.ndim != 1 or not theta.flags.c_contiguous or theta.dtype not in (np.float32, np.float64):
            raise ValueError("theta must be a contiguous 1-D float32 or float64 array")
        if grad.shape != theta.shape or grad.dtype != theta.dtype or not grad.flags.c_contiguous:
            raise ValueError("grad must be contiguous with theta's shape and dtype")
        n = theta.shape[0]
        slots = state.slots
        if (slots.shape != (len(self.slot_names), n) or slots.dtype != theta.dtype
                or not slots.flags.c_contiguous):
            raise ValueError(f"state.slots must be contiguous {(len(self.slot_names), n)} {theta.dtype}; "
                             f"got {slots.shape} {slots.dtype}")
        return n

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


def register_optimizer(cls: type[Optimizer]) -> type[Optimizer]:
    """Check an optimizer class's declarations and add it to OPTIMIZERS
    (usable as a decorator).  ``OPTIMIZERS.remove(name)`` takes it out again."""
    if "title" not in vars(cls):
        raise ValueError(f"optimizer {cls.name!r} needs its own display title")
    unknown = set(cls.hyper_slots) - set(cls.hyperparameters)
    if unknown:
        raise ValueError(f"optimizer {cls.name!r}: hyper_slots name unknown hyperparameters {sorted(unknown)}")
    columns = list(cls.hyper_slots.values()) + list(cls.fixed_hyper)
    if len(set(columns)) != len(columns) or not all(0 <= c < optim.HYPER_SIZE for c in columns):
        raise ValueError(f"optimizer {cls.name!r}: hyper columns {columns} must be distinct and below "
                         f"{optim.HYPER_SIZE}")
    OPTIMIZERS.add(cls.name, cls)
    return cls


@register_optimizer
class SGD(Optimizer):
    """Plain gradient descent (no state).

        theta <- theta - lr * g
    """

    name = "sgd"
    title = "Gradient descent (SGD)"
    kernel_code = optim.SGD
    kernel = staticmethod(optim.sgd_kernel)
    default_learning_rate = 0.01


@register_optimizer
class Momentum(Optimizer):
    """Momentum optimization (Polyak 1964; book Eq. 11-4), torch.optim.SGD form.

        b <- mu * b + g
        theta <- theta - lr * b

    The book writes m <- beta*m - lr*g, theta <- theta + m; with a constant
    learning rate that is the same trajectory (m = -lr*b).  torch keeps lr
    outside the buffer, so a schedule's new rate takes effect at once.

    Nesterov (the "nesterov" entry, Nesterov flag set; book Eq. 11-5) uses
    torch's reformulation, which needs no second gradient evaluation: the
    gradient at the look-ahead point is approximated by stepping along the
    updated buffer once more,

        b <- mu * b + g
        theta <- theta - lr * (g + mu * b)
    """

    name = "momentum"
    title = "Momentum"
    kernel_code = optim.MOMENTUM
    kernel = staticmethod(optim.momentum_kernel)
    slot_names = ("velocity",)
    hyperparameters = {
        "momentum": _unit_interval(0.9, "Momentum β: fraction of the previous velocity kept each step "
                                        "(0 = plain gradient descent, near 1 = little friction)."),
    }
    hyper_slots = {"momentum": optim.H_MOMENTUM}
    default_learning_rate = 0.01


@register_optimizer
class Nesterov(Momentum):
    """Nesterov Accelerated Gradient: :class:`Momentum` with the nesterov flag."""

    name = "nesterov"
    title = "Nesterov momentum (NAG)"
    fixed_hyper = {optim.H_NESTEROV: 1.0}


@register_optimizer
class AdaGrad(Optimizer):
    """AdaGrad (Duchi et al. 2011; book Eq. 11-6), torch.optim.Adagrad form.

        s <- s + g * g
        theta <- theta - lr * g / (sqrt(s) + eps)

    As in torch, epsilon sits outside the square root (the book puts it
    inside) and the accumulator starts at 0 (Keras starts at 0.1); torch's
    lr_decay is left to the schedules.
    """

    name = "adagrad"
    title = "AdaGrad"
    kernel_code = optim.ADAGRAD
    kernel = staticmethod(optim.adagrad_kernel)
    slot_names = ("accumulator",)
    hyperparameters = {
        "epsilon": _epsilon(1e-10),
        "initial_accumulator_value": _non_negative(
            0.0, "Starting value of the sum of squared gradients (torch 0, Keras 0.1)."),
    }
    hyper_slots = {"epsilon": optim.H_EPSILON}
    default_learning_rate = 0.01

    def _initialize_slots(self, slots):
        slots[0] = self.hyper["initial_accumulator_value"]


@register_optimizer
class RMSProp(Optimizer):
    """RMSProp (Tieleman & Hinton 2012; book Eq. 11-7), torch.optim.RMSprop form.

        s <- rho * s + (1 - rho) * g * g
        d  = sqrt(s) + eps
        theta <- theta - lr * g / d

    centered: also track m <- rho * m + (1 - rho) * g and use
    d = sqrt(s - m * m) + eps (the variance instead of the raw second moment).
    momentum > 0: b <- momentum * b + g / d; theta <- theta - lr * b.
    Epsilon sits outside the square root as in torch (the book puts it
    inside).  The decay rate defaults to the book's and Keras' rho = 0.9;
    torch's default (alpha) is 0.99.
    """

    name = "rmsprop"
    title = "RMSProp"
    kernel_code = optim.RMSPROP
    kernel = staticmethod(optim.rmsprop_kernel)
    slot_names = ("mean_square", "velocity", "mean_gradient")
    hyperparameters = {
        "momentum": _unit_interval(0.0, "Momentum applied to the scaled gradient (0 = none)."),
        "rho": _unit_interval(0.9, "Decay rate ρ of the running mean of squared gradients "
                                   "(book/Keras 0.9; torch's alpha defaults to 0.99)."),
        "epsilon": _epsilon(1e-8),
        "centered": Param(False, "Divide by the gradient's running variance instead of its "
                                 "mean square (more stable, a little slower).", kind="bool"),
    }
    hyper_slots = {"momentum": optim.H_MOMENTUM, "rho": optim.H_SQUARE_DECAY, "epsilon": optim.H_EPSILON,
                   "centered": optim.H_CENTERED}
    default_learning_rate = 0.001


# Adam and AdaMax keep two running moments with the same hyperparameters and slots.
TWO_MOMENT_SLOTS = {"beta_1": optim.H_MOMENTUM, "beta_2": optim.H_SQUARE_DECAY, "epsilon": optim.H_EPSILON}


def _two_moments(second: str) -> dict:
    """beta_1, beta_2 and epsilon of an Adam-family optimizer; ``second`` names its second moment."""
    return {
        "beta_1": _unit_interval(0.9, "Decay rate β1 of the running mean of gradients (momentum)."),
        "beta_2": _unit_interval(0.999, f"Decay rate β2 of the running {second}."),
        "epsilon": _epsilon(1e-8),
    }


@register_optimizer
class Adam(Optimizer):
    """Adam (Kingma & Ba 2015; book Eq. 11-8), torch.optim.Adam form.

        m <- b1 * m + (1 - b1) * g
        v <- b2 * v + (1 - b2) * g * g
        theta <- theta - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

    Bias correction as in the book (steps 3 and 4); epsilon is added after
    the square root of the bias-corrected v, as torch does (the book puts it
    inside).  The book's m has the opposite sign; the trajectory is the same.

    Nadam is the "nadam" entry (:class:`Nadam`, Nesterov flag set).
    """

    name = "adam"
    title = "Adam"
    kernel_code = optim.ADAM
    kernel = staticmethod(optim.adam_kernel)
    slot_names = ("m", "v")
    hyperparameters = _two_moments("mean of squared gradients")
    hyper_slots = dict(TWO_MOMENT_SLOTS)
    default_learning_rate = 0.001


@register_optimizer
class Nadam(Adam):
    """Nadam: :class:`Adam` with a Nesterov look-ahead (the Nesterov flag), m and v as in Adam.

    Dozat (2016, "Incorporating Nesterov Momentum into Adam") lets the momentum
    coefficient warm up over training, mu_t = b1 * (1 - 0.5 * 0.96^(t * psi))
    with psi = 1/250, and mixes the next momentum with the current gradient:

        P_t = mu_1 * mu_2 * ... * mu_t
        theta <- theta - lr * (mu_{t+1} * m / (1 - P_t * mu_{t+1}) + (1 - mu_t) * g / (1 - P_t))
                        / (sqrt(v) / sqrt(1 - b2^t) + eps)

    ``momentum_decay`` is psi.  The variants, and what each library calls Nadam:

    * momentum_decay 0 (the default here, and what presets without the key
      run): no schedule, mu_t = b1 at every step, so the update reads
      theta <- theta - lr * (b1 * m / (1 - b1^(t+1)) + (1 - b1) * g / (1 - b1^t)) / d.
      This is optax's ``nadam`` (``adam(nesterov=True)``) and torch's NAdam in
      the limit of a huge momentum_decay.  Note: torch's momentum_decay=0
      means something else (mu_t = b1/2 at every step); here 0 switches the
      schedule off.
    * momentum_decay 0.004: Dozat's schedule as published, and the default
      of torch.optim.NAdam (its momentum_decay).
    * momentum_decay 1: keras.optimizers.Nadam (Keras 3), which uses
      mu_t = b1 * (1 - 0.5 * 0.96^t): the warm-up is over within ~100 steps
      (Keras's epsilon default is 1e-7; it is 1e-8 here, as in torch).

    The product P_t is recomputed from t with the current b1, so the state is
    Adam's; under a 1cycle schedule that cycles b1 this uses this step's b1 for
    the past steps too, where torch multiplies the values it actually used.
    """

    name = "nadam"
    title = "Nadam"
    fixed_hyper = {optim.H_NESTEROV: 1.0}
    default_learning_rate = 0.002
    hyperparameters = {
        **Adam.hyperparameters,
        "momentum_decay": _non_negative(0.0, "Dozat's momentum schedule ψ: β1 warms up as "
                                             "β1·(1 − 0.5·0.96^(t·ψ)); 0 = no schedule (optax), 0.004 = "
                                             "Dozat and torch, 1 = Keras."),
    }
    hyper_slots = {**Adam.hyper_slots, "momentum_decay": optim.H_MOMENTUM_DECAY}


@register_optimizer
class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay,
    torch.optim.AdamW semantics.  Before the Adam step:

        theta <- theta - lr * weight_decay * theta

    The decay is not added to the gradient, so the adaptive scaling does not
    weaken it.
    """

    name = "adamw"
    title = "AdamW"
    hyperparameters = {
        **Adam.hyperparameters,
        "weight_decay": _non_negative(0.01, "Decoupled weight decay: each step shrinks the weights "
                                            "by lr × weight_decay of their value."),
    }
    hyper_slots = {**Adam.hyper_slots, "weight_decay": optim.H_WEIGHT_DECAY}


@register_optimizer
class AdaMax(Optimizer):
    """AdaMax (Kingma & Ba 2015, section 7.1), torch.optim.Adamax form.

        m <- b1 * m + (1 - b1) * g
        u <- max(b2 * u, |g| + eps)
        theta <- theta - lr / (1 - b1^t) * m / u

    u needs no bias correction; epsilon sits inside the max as in torch.
    """

    name = "adamax"
    title = "AdaMax"
    kernel_code = optim.ADAMAX
    kernel = staticmethod(optim.adamax_kernel)
    slot_names = ("m", "u")
    hyperparameters = _two_moments("infinity norm of gradients")
    hyper_slots = dict(TWO_MOMENT_SLOTS)
    default_learning_rate = 0.002


@register_optimizer
class Ftrl(Optimizer):
    """FTRL-Proximal (McMahan et al. 2013), keras.optimizers.Ftrl semantics
    (torch has no FTRL).  With p = -learning_rate_power and w the current
    weights:

        n' = n + g * g
        z <- z + g + 2 * l2_shrinkage * w - (n'^p - n^p) / lr * w
        n <- n'
        w <- (clip(z, -l1, l1) - z) / (n'^p / lr + 2 * l2 + beta / lr)

    The weights are recomputed from z and n every step, so l1 sets weights
    exactly to zero while |z| <= l1: that is what makes the model sparse.

    The restart (Keras's behaviour, kept by default): each step recomputes
    the weights from z and n alone, and z starts at 0, so the first step gives

        w_1 = w_0 * (1 - (n_0 / n_1)^p) - (g + ...) / (n_1^p / lr + ...)

    which forgets most of the initial weights w_0 wherever g * g is small
    next to initial_accumulator_value n_0: the initial accumulator's proximal
    term is centred on 0, not on w_0.  On a deep net that means FTRL starts
    over from weights near zero, and part of its sparsity comes from there.
    ``keep_initial_weights`` centres that term on w_0 instead (z starts at
    -n_0^p / lr * w_0), so the first step is w_1 = w_0 - lr * g / n_1^p when
    l1 = l2 = beta = shrinkage = 0: McMahan's algorithm started at w_0.

    Departure from Keras: where the denominator is 0 (initial_accumulator_value
    0, no gradient seen yet, l2 = beta = 0) the weight is 0, as in McMahan et
    al.'s Algorithm 1 (a coordinate without history has weight 0); Keras
    computes 0/0 there, so an input feature that is always 0 turned its
    weights into NaN on the first step.
    """

    name = "ftrl"
    title = "FTRL"
    kernel_code = optim.FTRL
    kernel = staticmethod(optim.ftrl_kernel)
    slot_names = ("accumulator", "linear")
    hyperparameters = {
        "learning_rate_power": Param(-0.5, "How fast the per-weight step size shrinks as squared "
                                           "gradients accumulate (0 = fixed step size).", high=0.0),
        "initial_accumulator_value": _non_negative(0.1, "Starting value of the sum of squared gradients."),
        "l1": _non_negative(0.0, "L1 regularization strength (drives weights exactly to zero)."),
        "l2": _non_negative(0.0, "L2 regularization strength (stabilization penalty)."),
        "l2_shrinkage": _non_negative(0.0, "L2 shrinkage: an L2 penalty added to the loss's gradient."),
        "beta": _non_negative(0.0, "The paper's β, added to the per-weight step size denominator."),
        "keep_initial_weights": Param(False, "Continue from the starting weights: the first step "
                                             "moves them instead of restarting near zero (Keras: false).",
                                      kind="bool"),
    }
    hyper_slots = {"learning_rate_power": optim.H_LR_POWER, "l1": optim.H_L1, "l2": optim.H_L2,
                   "beta": optim.H_FTRL_BETA, "l2_shrinkage": optim.H_L2_SHRINKAGE,
                   "keep_initial_weights": optim.H_FTRL_KEEP_INITIAL}
    default_learning_rate = 0.001

    def _initialize_slots(self, slots):
        slots[0] = self.hyper["initial_accumulator_value"]


def make_optimizer(config: Mapping[str, Any]) -> Optimizer:
    """Build an optimizer from the experiment's "optimizer" section, e.g.
    ``{"name": "adam", "learning_rate": 0.001, "beta_1": 0.9}``.

    The clip keys (clipvalue, clipnorm, global_clipnorm) are accepted and
    ignored: the training loop reads them and calls
    :func:`engine.kernels.optim.clip_gradients`.  Raises ExperimentError
    naming the offending key.
    """
    if not isinstance(config, Mapping):
        raise ExperimentError(f"optimizer must be an object, got {config!r}")
    if "name" not in config:
        raise ExperimentError(f"optimizer.name is missing; allowed: {', '.join(OPTIMIZERS.names())}")
    cls = OPTIMIZERS.get(config["name"])
    rest = {k: v for k, v in config.items() if k != "name"}
    # validate once here so an unknown key's message also offers learning_rate and the clip keys
    hyper = check_params(cls.hyperparameters, rest, "optimizer", ignore=("learning_rate",) + CLIP_KEYS)
    return cls(learning_rate=rest.get("learning_rate"), **hyper)


def optimizer_from_config(config: Mapping[str, Any]) -> Optimizer:
    """Inverse of :meth:`Optimizer.get_config` (same rules as make_optimizer)."""
    return make_optimizer(config)
