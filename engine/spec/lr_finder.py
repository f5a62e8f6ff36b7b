"""The learning-rate finder's parameters (schema only).

The sweep itself lives in :mod:`engine.training.lr_finder`; a comparison
variant's ``lr_finder`` key and the ``lr-find`` command take these keys.
"""
from __future__ import annotations

from typing import Any

from engine.errors import ExperimentError
from engine.params import Param, check_params

MIN_STEPS = 100   # a sweep of "one epoch" is at least this long

FINDER_PARAMS = {
    "min_lr": Param(1e-6, "first learning rate of the sweep", low=0.0, low_open=True, high=1e3, log=True),
    "max_lr": Param(10.0, "last learning rate of the sweep", low=0.0, low_open=True, high=1e6, log=True),
    "steps": Param(None, f"steps of the sweep; null = one epoch (at least {MIN_STEPS} steps)", "int", 10,
                   1_000_000, optional=True),
    "smoothing": Param(0.9, "exponential smoothing of the loss curve (0 = none)", low=0.0, high=1.0,
                       high_open=True),
    "stop_factor": Param(4.0, "stop once the smoothed loss exceeds this many times its minimum", low=1.0,
                         low_open=True),
}


def resolve_lr_finder(value: Any, where: str) -> dict | None:
    """A ``lr_finder`` value (true, false/null or an object of the keys above)
    as None (no sweep) or every key with its default filled in."""
    if value is None or value is False:
        return None
    if value is True:
        value = {}
    if not isinstance(value, dict):
        raise ExperimentError(f"{where} must be true, false or an object with "
                              f"{', '.join(FINDER_PARAMS)}, got {value!r:.60}")
    return check_params(FINDER_PARAMS, value, where)
