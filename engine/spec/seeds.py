"""Seed lists: how many times, and with which seeds, an experiment is repeated.

A comparison (``compare.seeds``), a staged workflow (``stages.seeds``) and
the command line's ``--seeds`` all name their seeds the same way: a count
``n`` (the experiment's seed, seed + 1, ... seed + n - 1) or a list of
distinct integers.  :func:`seed_list` is the one reader; each section passes
its own :class:`SeedRule` (where the value sits, the count used when it is
missing, the most seeds allowed).
"""
from __future__ import annotations

from typing import Any, NamedTuple

from engine.errors import ExperimentError

SEED_LIMIT = 2**32


class SeedRule(NamedTuple):
    where: str           # the key named in error messages
    default_count: int   # seeds when the value is missing (null)
    most: int            # the largest count / longest list accepted


COMPARE_SEEDS = SeedRule("compare.seeds", 3, 50)
STAGE_SEEDS = SeedRule("stages.seeds", 1, 100)
SWEEP_SEEDS = SeedRule("sweep.seeds", 3, 50)


def seed_list(value: Any, base_seed: int, rule: SeedRule = COMPARE_SEEDS) -> list[int]:
    """``value`` (a count, a list or null) as the list of seeds, validated.

    A count counts up from ``base_seed`` (wrapping at 2^32).  The default
    rule is the compare section's: the window's and the command line's
    ``--seeds`` choose the seeds of a comparison.
    """
    where, most = rule.where, rule.most
    if value is None:
        value = rule.default_count
    if isinstance(value, bool):
        raise ExperimentError(f"{where} must be a count (1..{most}) or a list of seeds, got {value!r}")
    if isinstance(value, int):
        if not 1 <= value <= most:
            raise ExperimentError(f"{where} must be from 1 to {most} seeds, got {value}")
        return [(base_seed + i) % SEED_LIMIT for i in range(value)]
    if not isinstance(value, list) or not 1 <= len(value) <= most:
        raise ExperimentError(f"{where} must be a count (1..{most}) or a non-empty list of at most "
                              f"{most} seeds, got {value!r:.60}")
    for i, s in enumerate(value):
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < SEED_LIMIT:
            raise ExperimentError(f"{where}[{i}] must be an integer from 0 to 2^32 - 1, got {s!r}")
    if len(set(value)) != len(value):
        raise ExperimentError(f"{where} must not repeat a seed, got {value}")
    return list(value)


def parse_seeds_option(text: str | None) -> list[int] | int | None:
    """``--seeds 5`` (a count) or ``--seeds 1,2,3`` (a list), for :func:`seed_list`."""
    if text is None:
        return None
    try:
        if "," in text:
            return [int(t) for t in text.split(",") if t.strip()]
        return int(text)
    except ValueError:
        raise ExperimentError(f"--seeds must be a count (5) or a list (1,2,3), got {text!r}") from None
