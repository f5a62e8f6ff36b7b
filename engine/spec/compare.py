"""The ``compare`` section: variants x seeds of one experiment (schema only).

How a comparison is run and reported lives in :mod:`engine.jobs.compare`;
this module says what the section may contain and validates it, building every
variant once so a bad override fails when the file is loaded.
"""
from __future__ import annotations

import copy
import math
import re
from typing import Any

from engine.errors import ExperimentError, nearest
from engine.params import Param
from engine.spec.lr_finder import resolve_lr_finder
from engine.spec.overrides import OVERRIDABLE, apply_overrides
from engine.spec.sections import check_unknown
from engine.spec.seeds import COMPARE_SEEDS, seed_list

SECTION_KEYS = ("variants", "seeds", "target", "metric")
VARIANT_KEYS = ("name", "overrides", "lr_finder", "zero_weights_below")
TARGET_METRICS = ("val_accuracy", "val_loss")
VERDICT_METRICS = ("auto", "val_accuracy", "val_loss")
MAX_VARIANTS = 24

ZERO_PARAM = Param(None, "after training, set kernel weights with |w| below this to exactly 0 and measure the "
                         "validation and test metrics again (the variant reports those)", low=0.0, low_open=True,
                   high=1e3, optional=True)

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
     "run the learning-rate finder on this variant (same seed, weights restored) and train with its "
     "suggestion, 10x below the turning point where the loss starts to climb: a 1cycle schedule's peak "
     "rate, else the optimizer's learning rate"),
    ("variants[].zero_weights_below", "number or null", "null", "> 0",
     "after training, set kernel weights with |w| below this to exactly 0 and report the metrics measured "
     "afterwards (zeroed.json in the run folder has both)"),
    ("seeds", "integer or list of integers", str(COMPARE_SEEDS.default_count),
     f"a count 1..{COMPARE_SEEDS.most} (seed, seed + 1, ...) "
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


def slug(text: str) -> str:
    """A variant's name as it names its run folders (``<slug>-seed<s>``): letters, digits, '.', '_'
    and '-', at most 60 characters.  Two variants whose slugs agree (``a/b`` and ``a-b``) are refused
    by :func:`resolve_compare`, or they would train into one folder."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:60] or "variant"


def resolve_compare(section: Any, experiment: dict) -> dict:
    """Validate the ``compare`` section against the resolved base experiment.

    Returns ``{"variants": [{"name", "overrides", "lr_finder"}], "seeds": [...],
    "target": {"metric", "value"} | None, "metric": ...}``.  Every variant is
    built once here, so a bad override fails when the file is loaded, naming
    the variant.
    """
    if not isinstance(section, dict):
        raise ExperimentError(f"compare must be an object with {', '.join(SECTION_KEYS)}, got {section!r:.60}")
    check_unknown(section, SECTION_KEYS, "compare")
    raw_variants = section.get("variants")
    if not isinstance(raw_variants, list) or not 1 <= len(raw_variants) <= MAX_VARIANTS:
        raise ExperimentError(f"compare.variants must be a list of 1 to {MAX_VARIANTS} variants "
                              f"({{\"name\": ..., \"overrides\": {{...}}}}), got {raw_variants!r:.60}")
    variants, names, folders = [], set(), {}
    for i, raw in enumerate(raw_variants):
        where = f"compare.variants[{i}]"
        if not isinstance(raw, dict):
            raise ExperimentError(f"{where} must be an object with a name and overrides, got {raw!r:.60}")
        check_unknown(raw, VARIANT_KEYS, where)
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 60:
            raise ExperimentError(f"{where}.name must be a non-empty string of at most 60 characters, got {name!r}")
        if name in names:
            raise ExperimentError(f"{where}.name {name!r} is used by another variant; names must be unique")
        names.add(name)
        folder = slug(name).casefold()   # case too: macOS and Windows folders ignore it
        if folder in folders:
            raise ExperimentError(f"{where}.name {name!r} and variant {folders[folder]!r} would share the run "
                                  f"folder {slug(name)}-seed<s> (names become letters, digits, '.', '_' and '-'); "
                                  f"rename one")
        folders[folder] = name
        overrides = raw.get("overrides", {})
        if overrides is None:
            overrides = {}
        if not isinstance(overrides, dict):
            raise ExperimentError(f"{where}.overrides must be an object, got {overrides!r:.60}")
        finder = resolve_lr_finder(raw.get("lr_finder"), f"{where}.lr_finder")
        zero = ZERO_PARAM.check(raw.get("zero_weights_below"), f"{where}.zero_weights_below")
        try:
            apply_overrides(experiment, overrides)
        except ExperimentError as exc:
            raise ExperimentError(f"{where} ({name}): {exc}") from None
        variants.append({"name": name, "overrides": copy.deepcopy(overrides), "lr_finder": finder,
                         "zero_weights_below": zero})
    seeds = seed_list(section.get("seeds"), experiment["seed"], COMPARE_SEEDS)
    target = section.get("target")
    if target is not None:
        if not isinstance(target, dict):
            raise ExperimentError(f"compare.target must be null or {{\"metric\": ..., \"value\": ...}}, "
                                  f"got {target!r:.60}")
        check_unknown(target, ("metric", "value"), "compare.target")
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
