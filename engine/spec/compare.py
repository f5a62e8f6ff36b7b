"""The ``compare`` section: variants x seeds of one experiment (schema only).

How a comparison is run and reported lives in :mod:`engine.jobs.compare`;
this module says what the section may contain and validates it, building every
variant once so a bad override fails when the file is loaded.
"""
from __future__ import annotations

import copy
import math
from typing import Any

from engine.errors import ExperimentError, nearest
from engine.spec.overrides import OVERRIDABLE, apply_overrides

SECTION_KEYS = ("variants", "seeds", "target", "metric")
VARIANT_KEYS = ("name", "overrides", "lr_finder", "zero_weights_below")
TARGET_METRICS = ("val_accuracy", "val_loss")
VERDICT_METRICS = ("auto", "val_accuracy", "val_loss")
MAX_VARIANTS = 24
MAX_SEEDS = 50
DEFAULT_SEEDS = 3


def _zero_param():
    from engine.params import Param

    return Param(None, "after training, set kernel weights with |w| below this to exactly 0 and measure the "
                       "validation and test metrics again (the variant reports those)", low=0.0, low_open=True,
                 high=1e3, optional=True)


ZERO_PARAM = _zero_param()

# The section's keys, documented (presets/README.md is generated from this table by
# tools/gen_schema_doc.py): (key, type, default, allowed values, meaning).
SECTION_DOC = (
    ("variants", "list of objects", "required", f"1 to {MAX_VARIANTS} variants",
     "the variants compared; each is the base experiment plus its overrides"),
    ("variants[].name", "string", "required", "unique, 1 to 60 characters",
     "shown in the table; also names the run folders (<name>-seed<s>)"),
    ("variants[].overrides", "object", "{}", ", ".join(OVERRIDABLE),
     "a partial experiment merged into the base (rules below); {} = the base itself"),
    ("variants[].lr_finder", "boolean or object", "false", "true, false or an object of the finder keys below",
     "run the learning-rate finder on this variant (same seed, weights restored); a 1cycle schedule peaks at "
     "the rate where the finder's loss was lowest, other schedules start from its suggestion (10x lower)"),
    ("variants[].zero_weights_below", "number or null", "null", "> 0",
     "after training, set kernel weights with |w| below this to exactly 0 and report the metrics measured "
     "afterwards (zeroed.json in the run folder has both)"),
    ("seeds", "integer or list of integers", str(DEFAULT_SEEDS), f"a count 1..{MAX_SEEDS} (seed, seed + 1, ...) "
     "or distinct integers 0..2^32-1", "every variant runs once per seed"),
    ("target", "object or null", "null", "{\"metric\": ..., \"value\": ...}",
     "optional: report the steps each run needed to reach it (checked at epoch ends)"),
    ("target.metric", "string", "val_accuracy", ", ".join(TARGET_METRICS), "the metric the target is about"),
    ("target.value", "number", "required", "0..1 for val_accuracy", "reached when val_accuracy >= value "
     "(or val_loss <= value)"),
    ("metric", "string", "auto", ", ".join(VERDICT_METRICS),
     "the final validation metric the verdicts compare; auto = the target's metric, else val_accuracy when "
     "the runs report one, else val_loss"),
)



def seed_list(value: Any, base_seed: int) -> list[int]:
    """compare.seeds (a count or a list) as the list of seeds, validated."""
    if value is None:
        value = DEFAULT_SEEDS
    if isinstance(value, bool):
        raise ExperimentError(f"compare.seeds must be a count or a list of seeds, got {value!r}")
    if isinstance(value, int):
        if not 1 <= value <= MAX_SEEDS:
            raise ExperimentError(f"compare.seeds must be from 1 to {MAX_SEEDS} seeds, got {value}")
        return [(base_seed + i) % 2**32 for i in range(value)]
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SEEDS:
        raise ExperimentError(f"compare.seeds must be a count (1..{MAX_SEEDS}) or a non-empty list of at most "
                              f"{MAX_SEEDS} seeds, got {value!r:.60}")
    for i, s in enumerate(value):
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**32:
            raise ExperimentError(f"compare.seeds[{i}] must be an integer from 0 to 2^32 - 1, got {s!r}")
    if len(set(value)) != len(value):
        raise ExperimentError(f"compare.seeds must not repeat a seed, got {value}")
    return list(value)


def _lr_finder_cfg(value: Any, where: str) -> dict | None:
    from engine.training.lr_finder import FINDER_PARAMS
    from engine.params import check_params

    if value is None or value is False:
        return None
    if value is True:
        value = {}
    if not isinstance(value, dict):
        raise ExperimentError(f"{where} must be true, false or an object with "
                              f"{', '.join(FINDER_PARAMS)}, got {value!r:.60}")
    return check_params(FINDER_PARAMS, value, where)


def resolve_compare(section: Any, experiment: dict) -> dict:
    """Validate the ``compare`` section against the resolved base experiment.

    Returns ``{"variants": [{"name", "overrides", "lr_finder"}], "seeds": [...],
    "target": {"metric", "value"} | None, "metric": ...}``.  Every variant is
    built once here, so a bad override fails when the file is loaded, naming
    the variant.
    """
    if not isinstance(section, dict):
        raise ExperimentError(f"compare must be an object with {', '.join(SECTION_KEYS)}, got {section!r:.60}")
    for key in section:
        if key not in SECTION_KEYS:
            raise ExperimentError(f"unknown key compare.{key}{nearest(key, SECTION_KEYS)}; "
                                  f"allowed: {', '.join(SECTION_KEYS)}")
    raw_variants = section.get("variants")
    if not isinstance(raw_variants, list) or not 1 <= len(raw_variants) <= MAX_VARIANTS:
        raise ExperimentError(f"compare.variants must be a list of 1 to {MAX_VARIANTS} variants "
                              f"({{\"name\": ..., \"overrides\": {{...}}}}), got {raw_variants!r:.60}")
    variants, names = [], set()
    for i, raw in enumerate(raw_variants):
        where = f"compare.variants[{i}]"
        if not isinstance(raw, dict):
            raise ExperimentError(f"{where} must be an object with a name and overrides, got {raw!r:.60}")
        for key in raw:
            if key not in VARIANT_KEYS:
                raise ExperimentError(f"unknown key {where}.{key}{nearest(key, VARIANT_KEYS)}; "
                                      f"allowed: {', '.join(VARIANT_KEYS)}")
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 60:
            raise ExperimentError(f"{where}.name must be a non-empty string of at most 60 characters, got {name!r}")
        if name in names:
            raise ExperimentError(f"{where}.name {name!r} is used by another variant; names must be unique")
        names.add(name)
        overrides = raw.get("overrides", {})
        if overrides is None:
            overrides = {}
        if not isinstance(overrides, dict):
            raise ExperimentError(f"{where}.overrides must be an object, got {overrides!r:.60}")
        finder = _lr_finder_cfg(raw.get("lr_finder"), f"{where}.lr_finder")
        zero = ZERO_PARAM.check(raw.get("zero_weights_below"), f"{where}.zero_weights_below")
        try:
            apply_overrides(experiment, overrides)
        except ExperimentError as exc:
            raise ExperimentError(f"{where} ({name}): {exc}") from None
        variants.append({"name": name, "overrides": copy.deepcopy(overrides), "lr_finder": finder,
                         "zero_weights_below": zero})
    seeds = seed_list(section.get("seeds"), experiment["seed"])
    target = section.get("target")
    if target is not None:
        if not isinstance(target, dict):
            raise ExperimentError(f"compare.target must be null or {{\"metric\": ..., \"value\": ...}}, "
                                  f"got {target!r:.60}")
        for key in target:
            if key not in ("metric", "value"):
                raise ExperimentError(f"unknown key compare.target.{key}{nearest(key, ('metric', 'value'))}; "
                                      f"allowed: metric, value")
        metric = target.get("metric", "val_accuracy")
        if metric not in TARGET_METRICS:
            raise ExperimentError(f"compare.target.metric must be one of {', '.join(TARGET_METRICS)}, got "
                                  f"{metric!r}{nearest(metric, TARGET_METRICS)}")
        value = target.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ExperimentError(f"compare.target.value must be a number, got {value!r}")
        if metric == "val_accuracy" and not 0.0 <= value <= 1.0:
            raise ExperimentError(f"compare.target.value for val_accuracy must be from 0 to 1, got {value!r}")
        target = {"metric": metric, "value": float(value)}
    metric = section.get("metric", "auto")
    if metric not in VERDICT_METRICS:
        raise ExperimentError(f"compare.metric must be one of {', '.join(VERDICT_METRICS)}, got "
                              f"{metric!r}{nearest(metric, VERDICT_METRICS)}")
    return {"variants": variants, "seeds": seeds, "target": target, "metric": metric}


def parse_seeds_option(text: str | None) -> list[int] | int | None:
    """``--seeds 5`` (a count) or ``--seeds 1,2,3`` (a list)."""
    if text is None:
        return None
    try:
        if "," in text:
            return [int(t) for t in text.split(",") if t.strip()]
        return int(text)
    except ValueError:
        raise ExperimentError(f"--seeds must be a count (5) or a list (1,2,3), got {text!r}") from None
