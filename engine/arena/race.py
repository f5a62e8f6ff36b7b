"""The optimizer arena: several optimizers race across a 2-D loss surface.

Every racer is one of the network engine's own optimizers
(:mod:`engine.catalog.optimizers`) with one of its learning-rate schedules
(:mod:`engine.catalog.schedules`) and the same gradient clipping kernel
(:func:`engine.kernels.optim.clip_gradients`); the arena only evaluates the
surface, feeds the gradient to ``update_step`` and records what happened.
There is no second copy of any update rule: what a racer shows is exactly
what the optimizer does to a network's weights, on a problem small enough
to draw.

Per racer the arena records the path, the loss, the gradient that was fed
to the optimizer (after noise and clipping) and the learning rate of each
step, and derives the distance to the nearest minimum and the effective
step size.  Two read-outs come from running the optimizer itself on copies
of its state:

* :meth:`Racer.velocity` — the step it would take next if the gradient were
  zero: how far its memory (momentum, Adam's first moment) carries it.  Zero
  for optimizers without such memory (SGD, AdaGrad, RMSProp without
  momentum).
* :meth:`Racer.gains` — how much of a small gradient along x, and along y,
  would turn into a step: the per-coordinate learning rate.  Equal for SGD
  and momentum; for AdaGrad/RMSProp/Adam it is larger along coordinates
  whose gradients have been small, which is why they head more directly to
  the minimum of an axis-aligned elongated bowl.

Arena presets are JSON files under ``presets/arena/`` (see
:func:`load_arena_preset`), validated on load.
"""
from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from engine.errors import ExperimentError, nearest
from engine.limits import parse_json
from engine.spec.sections import OPTIMIZER_CLIP_PARAMS
from engine.fileio import write_text
from engine.kernels.optim import clip_gradients
from engine.catalog.optimizers import CLIP_KEYS, Optimizer, OptimizerState, make_optimizer
from engine.params import Param, check_params
from engine.catalog.schedules import Schedule, make_schedule
from engine.arena.surfaces import Surface, make_surface

MAX_RACERS = 9
ARENA_PRESETS_DIR = Path(__file__).resolve().parents[2] / "presets" / "arena"
MAX_PRESET_BYTES = 256 * 1024
# a racer stops once it is this many view widths from the view's centre
# (or its position or loss is not finite): it has diverged
DIVERGED_VIEWS = 1e6

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_BOUNDS = np.array([0, 2], dtype=np.int64)  # x and y form one "tensor" for clipping


# ------------------------------------------------------------------ racers
@dataclass
class RacerSpec:
    """What one racer is: a label, an optimizer configuration (as in an
    experiment's "optimizer" section), a schedule configuration, gradient
    clipping thresholds (clipvalue / clipnorm / global_clipnorm, None = off)
    and an optional colour "#rrggbb" for the window."""

    label: str
    optimizer: dict
    schedule: dict = field(default_factory=lambda: {"name": "constant"})
    clip: dict = field(default_factory=dict)
    color: str | None = None

    @classmethod
    def coerce(cls, value: Any, where: str = "racer") -> "RacerSpec":
        """Accept a RacerSpec, a (label, optimizer, schedule, clip) tuple
        (schedule and clip optional) or a preset's racer object."""
        if isinstance(value, RacerSpec):
            return value.validated(where)
        if isinstance(value, (tuple, list)):
            if not 2 <= len(value) <= 4:
                raise ExperimentError(f"{where} must be (label, optimizer[, schedule[, clip]]), "
                                      f"got {len(value)} items")
            label, optimizer, *rest = value
            schedule = rest[0] if rest and rest[0] is not None else {"name": "constant"}
            clip = rest[1] if len(rest) > 1 and rest[1] is not None else {}
            return cls(label, optimizer, schedule, clip).validated(where)
        if isinstance(value, Mapping):
            allowed = ("label", "optimizer", "schedule", "clip", "color")
            for key in value:
                if key not in allowed:
                    raise ExperimentError(f"unknown key {where}.{key}{nearest(key, allowed)}; "
                                          f"allowed: {', '.join(allowed)}")
            for key in ("label", "optimizer"):
                if key not in value:
                    raise ExperimentError(f"{where}.{key} is missing")
            return cls(value["label"], value["optimizer"], value.get("schedule") or {"name": "constant"},
                       value.get("clip") or {}, value.get("color")).validated(where)
        raise ExperimentError(f"{where} must be an object, got {type(value).__name__}")

    def validated(self, where: str = "racer") -> "RacerSpec":
        """A normalised copy; raises ExperimentError naming the bad key.
        Clip keys inside the optimizer section (the experiment format) are
        moved to ``clip``."""
        if not isinstance(self.label, str) or not self.label.strip():
            raise ExperimentError(f"{where}.label must be a non-empty string, got {self.label!r}")
        if not isinstance(self.optimizer, Mapping):
            raise ExperimentError(f"{where}.optimizer must be an object, got {self.optimizer!r}")
        clip_in_optimizer = {k: v for k, v in self.optimizer.items() if k in CLIP_KEYS}
        optimizer_config = {k: v for k, v in self.optimizer.items() if k not in CLIP_KEYS}
        try:
            optimizer = make_optimizer(optimizer_config)
            schedule = make_schedule(self.schedule)
        except ExperimentError as exc:
            raise ExperimentError(f"{where}: {exc}") from None
        if not isinstance(self.clip, Mapping):
            raise ExperimentError(f"{where}.clip must be an object, got {self.clip!r}")
        clip = check_params(OPTIMIZER_CLIP_PARAMS, {**clip_in_optimizer, **self.clip}, f"{where}.clip")
        if self.color is not None and not (isinstance(self.color, str) and _COLOR.match(self.color)):
            raise ExperimentError(f"{where}.color must be a colour like \"#1f77b4\", got {self.color!r}")
        return RacerSpec(self.label.strip(), optimizer.get_config(), schedule.get_config(),
                         {k: v for k, v in clip.items() if v is not None}, self.color)

    def to_json(self) -> dict:
        out = {"label": self.label, "optimizer": dict(self.optimizer), "schedule": dict(self.schedule)}
        if self.clip:
            out["clip"] = dict(self.clip)
        if self.color:
            out["color"] = self.color
        return out


def is_adaptive(optimizer: Optimizer) -> bool:
    """True if the optimizer's first step hardly depends on the gradient's
    scale (AdaGrad, RMSProp, Adam and relatives), False if the step grows in
    proportion to the gradient (SGD, momentum).  Measured by running the
    optimizer, not by its name, so new registry entries classify themselves."""
    steps = []
    for scale in (1.0, 1000.0):
        theta = np.zeros(2)
        state = optimizer.build(2)
        optimizer.update_step(theta, np.full(2, scale), state)
        steps.append(float(np.linalg.norm(theta)))
    return steps[0] > 0 and steps[1] / steps[0] < 10.0


def step_decay(optimizer: Optimizer, steps: int = 100) -> float:
    """Length of the last of ``steps`` updates under a constant gradient,
    relative to the tenth (after the start-up transients of RMSProp and
    Adam): about 1 for SGD, RMSProp and Adam, above 1 for momentum (it
    speeds up), about sqrt(10 / steps) for optimizers whose steps shrink as
    squared gradients accumulate (AdaGrad, FTRL)."""
    theta = np.zeros(2)
    state = optimizer.build(2)
    grad = np.ones(2)
    lengths = []
    for _ in range(steps):
        before = theta.copy()
        optimizer.update_step(theta, grad.copy(), state)
        lengths.append(float(np.linalg.norm(theta - before)))
    return lengths[-1] / lengths[9] if lengths[9] > 0 else 1.0


def suggested_learning_rate(surface: Surface, optimizer_name: str) -> float:
    """A learning rate that moves visibly but stays stable on this surface:
    the surface's rate for gradient-proportional or for adaptive steps, the
    latter tripled for optimizers whose steps keep shrinking (AdaGrad)."""
    optimizer = make_optimizer({"name": optimizer_name})
    if not is_adaptive(optimizer):
        return surface.learning_rates["gradient"]
    rate = surface.learning_rates["adaptive"]
    return rate * 3.0 if step_decay(optimizer) < 0.5 else rate


class Racer:
    """One optimizer's run on the arena's surface.  Built and driven by
    :class:`Arena`; read its arrays, do not write them."""

    def __init__(self, spec: RacerSpec, surface: Surface, start, horizon: int,
                 steps_per_epoch: int, noise_std: float, seed: int):
        self.spec = spec
        self.surface = surface
        self.optimizer = make_optimizer(spec.optimizer)
        self.adaptive = is_adaptive(self.optimizer)
        self.slot_names: tuple[str, ...] = tuple(self.optimizer.slot_names)
        self._clip = tuple(float(spec.clip.get(k) or 0.0) for k in ("clipvalue", "clipnorm", "global_clipnorm"))
        self._horizon = int(horizon)
        self._steps_per_epoch = int(steps_per_epoch)
        self._noise_std = float(noise_std)
        self._seed = int(seed)
        x0, x1, y0, y1 = surface.view
        self._centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        self._limit = DIVERGED_VIEWS * max(x1 - x0, y1 - y0)
        self.reset(start)

    # ------------------------------------------------------------- lifecycle
    def reset(self, start) -> None:
        self.theta = np.array(start, dtype=np.float64).reshape(2).copy()
        self.state: OptimizerState = self.optimizer.build(2, np.float64)
        self.schedule: Schedule = make_schedule(self.spec.schedule)
        self.schedule.start(self.optimizer.learning_rate, self._horizon, self._steps_per_epoch)
        self._rng = np.random.default_rng(self._seed)
        capacity = 256
        self._path = np.empty((capacity, 2))
        self._loss = np.empty(capacity)
        self._grad = np.empty((capacity, 2))
        self._lr = np.empty(capacity)
        self._n = 0  # steps taken
        self.stopped: str | None = None  # why the racer no longer moves ("diverged")
        with np.errstate(all="ignore"):
            loss, _ = self.surface.value_and_gradient(self.theta)
        self._path[0] = self.theta
        self._loss[0] = loss

    def _grow(self, needed: int) -> None:
        capacity = self._path.shape[0]
        if needed <= capacity:
            return
        new = max(needed, 2 * capacity)
        for name in ("_path", "_loss", "_grad", "_lr"):
            old = getattr(self, name)
            arr = np.empty((new,) + old.shape[1:])
            arr[:old.shape[0]] = old
            setattr(self, name, arr)

    def advance(self, n: int) -> int:
        """Take up to n steps; returns how many were taken (fewer if the
        racer diverges)."""
        if n <= 0 or self.stopped:
            return 0
        first = self._n
        self._grow(first + n + 1)
        noise = (self._rng.standard_normal((n, 2)) * self._noise_std) if self._noise_std > 0 else None
        surface, optimizer, state, theta = self.surface, self.optimizer, self.state, self.theta
        cv, cn, gcn = self._clip
        clipping = cv > 0 or cn > 0 or gcn > 0
        taken = 0
        with np.errstate(all="ignore"):
            loss, grad = surface.value_and_gradient(theta)
            while taken < n and not self.stopped:
                # rates for the rest of this epoch: the performance schedule
                # may change them at the epoch's end
                i0 = self._n
                chunk = min(n - taken, self._steps_per_epoch - i0 % self._steps_per_epoch)
                lrs = self.schedule.learning_rates(i0, chunk)
                momenta = self.schedule.momenta(i0, chunk) if optimizer.momentum_on else None
                for k in range(chunk):
                    if noise is not None:
                        grad += noise[taken]
                    if clipping:
                        clip_gradients(grad, _BOUNDS, cv, cn, gcn)
                    i = i0 + k
                    self._grad[i] = grad
                    self._lr[i] = lrs[k]
                    optimizer.update_step(theta, grad, state, lr=lrs[k],
                                          cycled_value=None if momenta is None else momenta[k])
                    loss, grad = surface.value_and_gradient(theta)
                    self._path[i + 1] = theta
                    self._loss[i + 1] = loss
                    taken += 1
                    self._n = i + 1
                    if not (math.isfinite(loss) and np.all(np.isfinite(theta))
                            and np.max(np.abs(theta - self._centre)) < self._limit):
                        self.stopped = "diverged"
                        break
                if self._n % self._steps_per_epoch == 0 and not self.stopped:
                    self.schedule.on_epoch_end(self._n // self._steps_per_epoch - 1, loss)
        return taken

    # ------------------------------------------------------------- read-outs
    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def steps(self) -> int:
        """Optimizer updates taken so far."""
        return self._n

    @property
    def path(self) -> np.ndarray:
        """(steps + 1, 2) positions, the start first (a view; do not modify)."""
        return self._path[:self._n + 1]

    @property
    def losses(self) -> np.ndarray:
        """(steps + 1,) loss at each position of the path."""
        return self._loss[:self._n + 1]

    @property
    def gradients(self) -> np.ndarray:
        """(steps, 2) gradient fed to the optimizer at each step (after noise
        and clipping)."""
        return self._grad[:self._n]

    @property
    def learning_rates(self) -> np.ndarray:
        """(steps,) learning rate of each step (from the schedule)."""
        return self._lr[:self._n]

    @property
    def position(self) -> np.ndarray:
        return self._path[self._n].copy()

    @property
    def loss(self) -> float:
        return float(self._loss[self._n])

    @property
    def distance(self) -> float:
        """Distance from the current position to the nearest minimum."""
        return float(self.surface.distance_to_minimum(self._path[self._n]))

    def steps_to_loss(self, tol: float = 1e-6) -> int | None:
        """The first step at which the loss is below ``tol`` (None if not yet)."""
        hits = np.nonzero(self.losses < tol)[0]
        return int(hits[0]) if hits.size else None

    def distances(self) -> np.ndarray:
        """(steps + 1,) distance to the nearest minimum along the path."""
        return self.surface.distance_to_minimum(self.path)

    def step_lengths(self) -> np.ndarray:
        """(steps,) |Δθ| of each step."""
        return np.linalg.norm(np.diff(self.path, axis=0), axis=1)

    def effective_steps(self) -> np.ndarray:
        """(steps,) |Δθ| / |g| of each step: how far the optimizer moved per
        unit of gradient (NaN where the gradient was 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            norm = np.linalg.norm(self.gradients, axis=1)
            return np.where(norm > 0, self.step_lengths() / norm, np.nan)

    def effective_steps_per_coordinate(self) -> np.ndarray:
        """(steps, 2) -Δθ_i / g_i of each step.  For AdaGrad and RMSProp this
        is exactly the per-coordinate learning rate η / (√s_i + ε); for
        momentum methods it mixes in the velocity.  NaN where g_i is 0 or
        where the step is so small against θ_i that rounding would blur the
        ratio by more than about a millionth (|Δθ_i| < 2e-10 |θ_i|, or
        subnormal numbers)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            g = self.gradients
            path = self.path
            delta = np.diff(path, axis=0)
            size = np.maximum(np.abs(path[:-1]), np.abs(path[1:]))
            # (and both well above the subnormal range, where digits are lost)
            measurable = ((np.abs(g) > 1e-290) & (np.abs(delta) > 1e-290)
                          & (np.abs(delta) > 1e6 * np.finfo(np.float64).eps * size))
            return np.where(measurable, -delta / g, np.nan)

    @property
    def effective_step(self) -> float:
        """|Δθ| / |g| of the last step (NaN before the first)."""
        if self._n == 0:
            return math.nan
        g = float(np.linalg.norm(self._grad[self._n - 1]))
        d = float(np.linalg.norm(self._path[self._n] - self._path[self._n - 1]))
        return d / g if g > 0 else math.nan

    def slots(self) -> dict[str, np.ndarray]:
        """The optimizer's state by slot name (copies), e.g. {"velocity": (2,)}
        for momentum, {"m": ..., "v": ...} for Adam."""
        return {name: self.state.slots[i].copy() for i, name in enumerate(self.slot_names)}

    def next_learning_rate(self) -> float:
        return float(self.schedule.learning_rates(self._n, 1)[0])

    def _probe(self, grad: np.ndarray, at_origin: bool = False) -> np.ndarray:
        """The step the optimizer would take next with this gradient, run on
        copies of the state and of theta (or, with ``at_origin``, of a zero
        vector: a step far smaller than theta would otherwise be lost to
        rounding when subtracting)."""
        start = np.zeros(2) if at_origin else self.theta
        theta = start.copy()
        state = OptimizerState(self.state.slots.copy(), self.state.step)
        momenta = self.schedule.momenta(self._n, 1) if self.optimizer.momentum_on else None
        with np.errstate(all="ignore"):
            self.optimizer.update_step(theta, np.ascontiguousarray(grad, dtype=np.float64), state,
                                       lr=self.next_learning_rate(),
                                       cycled_value=None if momenta is None else momenta[0])
        return theta - start

    def velocity(self) -> np.ndarray:
        """(2,) the next step if the gradient were zero: how far momentum
        alone carries the racer.  Zero for memoryless optimizers."""
        return self._probe(np.zeros(2))

    def gains(self) -> np.ndarray | None:
        """(2,) per-coordinate learning rate: the next step's response to a
        tiny gradient along x and along y (step = -gain · g).  None before
        the first step (AdaGrad's scaling is undefined until it has seen a
        gradient)."""
        if self._n == 0 or self.stopped:
            return None
        # Probed at the origin: the response to the gradient does not depend
        # on theta (AdamW's decay and FTRL's use of the weights only add
        # terms that cancel in the difference or are second order in delta).
        base = self._probe(np.zeros(2), at_origin=True)
        scale = float(np.linalg.norm(self._grad[self._n - 1]))
        delta = 1e-6 * (scale if scale > 0 else 1.0)
        out = np.empty(2)
        for i in range(2):
            g = np.zeros(2)
            g[i] = delta
            out[i] = (base[i] - self._probe(g, at_origin=True)[i]) / delta
        return out

    def has_velocity(self) -> bool:
        """True if the optimizer keeps a velocity (its next step is not zero
        when the gradient is)."""
        return bool(np.any(self.velocity() != 0))


# ------------------------------------------------------------------- arena
class Arena:
    """A race of up to nine optimizers on one surface from one start.

    surface:  a :class:`~engine.arena.surfaces.Surface`, a name or a config dict.
    racers:   RacerSpecs, (label, optimizer_config, schedule_config, clip)
              tuples or preset-style dicts.
    start:    (x, y); default the surface's own start.
    noise_std: standard deviation of Gaussian noise added to each gradient
              component, imitating mini-batch gradients.  Every racer draws
              the same noise sequence (seeded by ``seed``): the same "mini-
              batches", so differences come from the optimizers.
    horizon:  planned number of steps, given to schedules as the run length
              (the 1cycle schedule needs it); racing past it is allowed.
    steps_per_epoch: how many steps make an "epoch" for schedules that count
              epochs (piecewise with unit "epoch", performance scheduling,
              which sees the current loss at the end of each epoch).
    """

    def __init__(self, surface: Surface | Mapping | str, racers: Sequence[Any],
                 start: Sequence[float] | None = None, noise_std: float = 0.0, seed: int = 0,
                 horizon: int = 1000, steps_per_epoch: int = 1):
        self.surface = surface if isinstance(surface, Surface) else make_surface(surface)
        specs = [RacerSpec.coerce(r, f"racers[{i}]") for i, r in enumerate(racers)]
        if not 1 <= len(specs) <= MAX_RACERS:
            raise ExperimentError(f"an arena holds 1 to {MAX_RACERS} racers, got {len(specs)}")
        if not (isinstance(noise_std, (int, float)) and math.isfinite(noise_std) and noise_std >= 0):
            raise ExperimentError(f"noise_std must be a number >= 0, got {noise_std!r}")
        if horizon < 1 or steps_per_epoch < 1:
            raise ExperimentError(f"horizon and steps_per_epoch must be >= 1, got {horizon} and {steps_per_epoch}")
        self.specs = specs
        self.noise_std = float(noise_std)
        self.seed = int(seed)
        self.horizon = int(horizon)
        self.steps_per_epoch = int(steps_per_epoch)
        self.start = self._check_start(self.surface.start if start is None else start)
        self.racers = [Racer(spec, self.surface, self.start, self.horizon, self.steps_per_epoch,
                             self.noise_std, self.seed) for spec in specs]

    @staticmethod
    def _check_start(start) -> np.ndarray:
        try:
            p = np.array(start, dtype=np.float64).reshape(2)
        except (TypeError, ValueError):
            raise ExperimentError(f"start must be two numbers [x, y], got {start!r}") from None
        if not np.all(np.isfinite(p)):
            raise ExperimentError(f"start must be finite, got {start!r}")
        return p

    @classmethod
    def from_preset(cls, preset: "ArenaPreset") -> "Arena":
        return cls(preset.surface, preset.racers, start=preset.start, noise_std=preset.noise_std,
                   seed=preset.seed, horizon=preset.steps)

    @property
    def steps(self) -> int:
        """Steps taken by the racers that are still running (the most any took)."""
        return max(r.steps for r in self.racers)

    def step(self, n: int = 1) -> None:
        """Advance every racer by n steps (a diverged racer stays put)."""
        for racer in self.racers:
            racer.advance(int(n))

    def reset(self) -> None:
        """Back to the start: fresh optimizer states, schedules and noise."""
        for racer in self.racers:
            racer.reset(self.start)

    def set_start(self, start: Sequence[float]) -> None:
        """Move the start and reset the race."""
        self.start = self._check_start(start)
        self.reset()

    def csv_rows(self) -> list[list]:
        """A header and one row per racer and step: racer index and label,
        optimizer, step, x, y, loss, distance to the nearest minimum,
        learning rate, the gradient fed to the optimizer (empty on the last
        row of each path: no step has been taken from there yet) and the
        effective step |Δθ|/|g| of the step that led here."""
        rows: list[list] = [["racer", "label", "optimizer", "step", "x", "y", "loss",
                             "distance_to_minimum", "learning_rate", "grad_x", "grad_y",
                             "effective_step"]]
        for index, racer in enumerate(self.racers):
            path, losses, dist = racer.path, racer.losses, racer.distances()
            grads, lrs, eff = racer.gradients, racer.learning_rates, racer.effective_steps()
            name = racer.optimizer.name
            for k in range(racer.steps + 1):
                has_step = k < racer.steps
                rows.append([index, racer.label, name, k, repr(float(path[k, 0])), repr(float(path[k, 1])),
                             repr(float(losses[k])), repr(float(dist[k])),
                             repr(float(lrs[k])) if has_step else "",
                             repr(float(grads[k, 0])) if has_step else "",
                             repr(float(grads[k, 1])) if has_step else "",
                             repr(float(eff[k - 1])) if k > 0 else ""])
        return rows

    def csv_text(self) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(self.csv_rows())
        return buffer.getvalue()

    def export_csv(self, path) -> None:
        """Write :meth:`csv_rows` to a CSV file (atomically)."""
        write_text(path, self.csv_text())


# ----------------------------------------------------------------- presets
PRESET_PARAMS = {
    "title": Param("", "Shown in the preset picker.", kind="str"),
    "explanation": Param("", "One paragraph: what to watch.", kind="str"),
    "start": Param(None, "Starting point [x, y]; null = the surface's default.", kind="floats",
                   optional=True),
    "noise_std": Param(0.0, "Standard deviation of the Gaussian noise added to every gradient "
                            "component (imitates mini-batches).", low=0.0),
    "seed": Param(0, "Seed of the gradient noise.", kind="int", low=0, high=2**63 - 1),
    "steps": Param(500, "How many steps the race runs (also the schedules' planned length).",
                   kind="int", low=1, high=1_000_000),
}


@dataclass
class ArenaPreset:
    """A validated arena preset (see ``presets/arena/README.md``)."""

    name: str
    title: str
    explanation: str
    surface: dict
    racers: list[RacerSpec]
    start: tuple[float, float] | None = None
    noise_std: float = 0.0
    seed: int = 0
    steps: int = 500

    def to_json(self) -> dict:
        out = {"title": self.title, "explanation": self.explanation, "surface": dict(self.surface)}
        if self.start is not None:
            out["start"] = list(self.start)
        out.update({"noise_std": self.noise_std, "seed": self.seed, "steps": self.steps,
                    "racers": [r.to_json() for r in self.racers]})
        return out


def parse_arena_preset(data: Any, name: str = "preset") -> ArenaPreset:
    """Validate a decoded JSON object; raises ExperimentError prefixed with
    ``name`` that says which key is wrong and what is allowed."""
    try:
        if not isinstance(data, dict):
            raise ExperimentError(f"an arena preset must be a JSON object ({{...}}), "
                                  f"got {type(data).__name__}")
        for key in ("title", "explanation", "surface", "racers"):
            if key not in data:
                raise ExperimentError(f"{key} is missing")
        values = check_params(PRESET_PARAMS, data, "preset", ignore=("surface", "racers"))
        for key in ("title", "explanation"):
            if not values[key].strip():
                raise ExperimentError(f"{key} must not be empty")
        try:
            surface = make_surface(data["surface"]).get_config()
        except ExperimentError as exc:
            raise ExperimentError(f"surface: {exc}") from None
        start = values["start"]
        if start is not None and len(start) != 2:
            raise ExperimentError(f"start must be two numbers [x, y], got {start!r}")
        racers = data["racers"]
        if not isinstance(racers, list) or not 1 <= len(racers) <= MAX_RACERS:
            raise ExperimentError(f"racers must be a list of 1 to {MAX_RACERS} racers, got {racers!r}")
        specs = [RacerSpec.coerce(r, f"racers[{i}]") for i, r in enumerate(racers)]
        return ArenaPreset(name=name, title=values["title"].strip(), explanation=values["explanation"].strip(),
                           surface=surface, racers=specs,
                           start=None if start is None else (float(start[0]), float(start[1])),
                           noise_std=values["noise_std"], seed=values["seed"], steps=values["steps"])
    except ExperimentError as exc:
        raise ExperimentError(f"{name}: {exc}") from None


def arena_preset_paths() -> dict[str, Path]:
    """Shipped arena presets by name (file stem), in file-name order."""
    return {p.stem: p for p in sorted(ARENA_PRESETS_DIR.glob("*.json"))}


def load_arena_preset(name_or_path: str | Path) -> ArenaPreset:
    """Read and validate an arena preset: a shipped preset's name or a path
    to a JSON file.  Plain JSON only (no code is ever evaluated)."""
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        presets = arena_preset_paths()
        if str(name_or_path) not in presets:
            raise ExperimentError(f"no arena preset file or name {str(name_or_path)!r}"
                                  f"{nearest(str(name_or_path), presets)}; presets: {', '.join(presets) or 'none'}")
        path = presets[str(name_or_path)]
    try:
        if path.stat().st_size > MAX_PRESET_BYTES:
            raise ExperimentError(f"{path}: too large for an arena preset "
                                  f"(at most {MAX_PRESET_BYTES // 1024} KB)")
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ExperimentError(f"cannot read arena preset {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ExperimentError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    data = parse_json(text, str(path), ExperimentError)   # bounded digits and nesting, BOM accepted
    return parse_arena_preset(data, str(path) if path.parent != ARENA_PRESETS_DIR else path.stem)


def arena_presets() -> list[ArenaPreset]:
    """Every shipped arena preset, loaded and validated."""
    return [load_arena_preset(path) for path in arena_preset_paths().values()]
