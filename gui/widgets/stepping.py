"""How the arrow keys and the mouse wheel move a number: one rule for every tab.

A spin box's arrows are only useful if one press makes a change the user can
see and want.  That depends on the setting, not on the tab it is shown in, so
the rule reads nothing but the :class:`engine.params.Param`:

* **log scale** (a 1-2-5 ladder: ..., 0.01, 0.02, 0.05, 0.1, ...) when the
  Param says so (``log=True``: learning rates, epsilons, decay steps, data set
  sizes) or when it is a *scale*, a number that must be > 0 and may span
  decades (clip norms, max-norm, a standard deviation): there a fixed step is
  either too coarse at the bottom or too fine at the top;
* **linear** otherwise: a hundredth of a bounded range (0.01 across the
  [0, 1) of a momentum, 1 across the [-90, 90] of an angle) or, for a range
  too wide to step across, a tenth of the default's order of magnitude (0.1
  for a coordinate that starts at 0, 1e-5 for a ``min_delta`` of 1e-4);
  integers step by 1.

A press that would leave the range stops at a closed bound and is not taken
at an open one.  Pure Python (no Qt), so the rule is tested on its own.
"""
from __future__ import annotations

import math
from numbers import Real

from engine.errors import ExperimentError
from engine.params import Param

LADDER = (1.0, 2.0, 5.0)      # mantissas of the log-scale ladder
WIDE_RANGE = 1e3              # a range at least this wide is a guard rail, not a range to step across
STEPS_PER_RANGE = 100         # linear steps across a bounded range
STEPS_PER_DECADE = 10         # linear steps per order of magnitude of the default (wide ranges)
SCALE_DECADES = 10.0          # an open-at-zero Param whose upper bound is at least this is a scale


def is_number(param: Param) -> bool:
    return param.kind in ("int", "float")


def log_scale(param: Param) -> bool:
    """Whether the value moves along the 1-2-5 ladder (see the module docstring)."""
    if not is_number(param):
        return False
    if param.log:
        return True
    is_scale = param.low == 0 and param.low_open and (param.high is None or param.high >= SCALE_DECADES)
    return param.kind == "float" and is_scale


def linear_step(param: Param) -> float:
    """The fixed step of a Param that is not on a log scale (1 for integers)."""
    if param.kind == "int":
        return 1
    bounded = param.low is not None and param.high is not None and param.high - param.low < WIDE_RANGE
    if bounded:
        size = (param.high - param.low) / STEPS_PER_RANGE
    else:
        typical = param.default if isinstance(param.default, Real) and param.default else 1.0
        size = abs(float(typical)) / STEPS_PER_DECADE
    return 10.0 ** math.floor(math.log10(size) + 1e-9)


def _along_ladder(value: float, direction: int) -> float:
    """The next 1-2-5 value above (direction +1) or below (-1) a positive ``value``."""
    exponent = math.floor(math.log10(value) + 1e-9)
    mantissa = value / 10 ** exponent
    if direction > 0:
        nxt = next((m for m in LADDER + (10.0,) if m > mantissa * (1 + 1e-9)), 10.0)
    else:
        nxt = next((m for m in reversed((0.5,) + LADDER) if m < mantissa * (1 - 1e-9)), 0.5)
    return float(f"{nxt * 10 ** exponent:.6g}")


def next_value(param: Param, value, direction: int):
    """One step of ``value`` up (direction +1) or down (-1), before range checks."""
    if log_scale(param) and value > 0:
        moved = _along_ladder(float(value), direction)
        if param.kind == "int":
            moved = int(round(moved))
            return moved if moved != value else int(value) + direction
        return moved
    if param.kind == "int":
        return int(value) + direction
    return float(f"{value + direction * linear_step(param):.10g}")


def _clamped(param: Param, value):
    """A value that left the range: the closed bound it crossed, or None (an open bound: no step)."""
    for bound, is_open, outside in ((param.low, param.low_open, param.low is not None and value < param.low),
                                    (param.high, param.high_open, param.high is not None and value > param.high)):
        if outside:
            return None if is_open else (int(bound) if param.kind == "int" else float(bound))
    return None


def stepped(param: Param, value, steps: int, where: str = "value"):
    """``value`` moved by ``steps`` arrow presses (negative: down), press by press: a press
    that would leave the range stops at a closed bound and is not taken at an open one (the
    value stays where the last press left it).  ``None`` (an unset optional value) starts
    from the default, else from the lower bound."""
    if value is None:
        value = param.default if param.default is not None else (param.low or 0)
    for _ in range(abs(steps)):
        nxt = next_value(param, value, 1 if steps > 0 else -1)
        try:
            value = param.check(nxt, where)
        except ExperimentError:
            bound = _clamped(param, nxt)
            return value if bound is None else bound
    return value
