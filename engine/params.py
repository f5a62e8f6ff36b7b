"""Declarative hyperparameter specs.

Optimizers, schedules, activations and data sets describe their settings with
:class:`Param`.  One description serves three readers: the experiment schema
validates values against it, the GUI builds a spin box / combo box with the
tooltip from it, and ``presets/README.md`` documents it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from engine.errors import ExperimentError, nearest


@dataclass(frozen=True)
class Param:
    """One setting.

    kind: "float", "int", "bool", "choice", "str", "ints" (list of ints) or
    "floats" (list of floats).  ``low``/``high`` bound numbers (inclusive
    unless ``low_open``/``high_open``); ``optional`` allows ``None``.
    """

    default: Any
    doc: str
    kind: str = "float"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    optional: bool = False
    log: bool = False  # a log-scale widget suits it (learning rates, epsilons)

    def describe_range(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "bool":
            return "true or false"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        base = {"int": "an integer", "float": "a number", "str": "a string",
                "ints": "a list of integers", "floats": "a list of numbers"}[self.kind]
        text = base + (" " + " and ".join(parts) if parts else "")
        return text + (" or null" if self.optional else "")

    def check(self, value: Any, where: str) -> Any:
        """Return the validated (and normalised) value or raise ExperimentError."""
        if value is None:
            if self.optional:
                return None
            raise ExperimentError(f"{where} must be {self.describe_range()}, got null")
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ExperimentError(f"{where} must be true or false, got {value!r}")
            return value
        if self.kind == "choice":
            if value not in self.choices:
                raise ExperimentError(
                    f"{where} must be {self.describe_range()}, got {value!r}{nearest(value, self.choices)}")
            return value
        if self.kind == "str":
            if not isinstance(value, str):
                raise ExperimentError(f"{where} must be a string, got {value!r}")
            return value
        if self.kind in ("ints", "floats"):
            if not isinstance(value, (list, tuple)):
                raise ExperimentError(f"{where} must be {self.describe_range()}, got {value!r}")
            scalar = Param(0, self.doc, self.kind[:-1], self.low, self.high, self.low_open, self.high_open)
            return [scalar.check(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return self._check_number(value, where)

    def _check_number(self, value: Any, where: str):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ExperimentError(f"{where} must be {self.describe_range()}, got {value!r}")
        if self.kind == "int":
            if isinstance(value, float):
                if not value.is_integer():
                    raise ExperimentError(f"{where} must be an integer, got {value!r}")
                value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ExperimentError(f"{where} must be a finite number, got {value!r}")
        bad_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        bad_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if bad_low or bad_high:
            raise ExperimentError(f"{where} must be {self.describe_range()}, got {value!r}")
        return value


def check_params(spec: Mapping[str, Param], values: Mapping[str, Any], where: str,
                 ignore: tuple = ()) -> dict:
    """Validate ``values`` against ``spec``: unknown keys are rejected with the
    nearest valid name, missing keys get their defaults.  Keys in ``ignore``
    are left to the caller."""
    if not isinstance(values, Mapping):
        raise ExperimentError(f"{where} must be an object, got {values!r}")
    out = {}
    for key in values:
        if key in ignore:
            continue
        if key not in spec:
            allowed = list(spec) + list(ignore)
            raise ExperimentError(
                f"unknown key {where}.{key}{nearest(key, allowed)}; allowed: {', '.join(allowed) or 'none'}")
    for key, param in spec.items():
        out[key] = param.check(values[key], f"{where}.{key}") if key in values else param.default
    return out
